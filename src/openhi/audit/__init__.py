"""The audit trail: one CloudTrail-shaped record per API call, native and DICOMweb (guide 20019-20108).

``trail.AuditTrail`` is a call observer (``openhi.api.observe``): it classifies the call (``categories``:
management or data event, read-only or not), builds the record (``record``: ``userIdentity`` from
``identity``, parameters through ``sanitize``) and hands it to ``writer.AuditWriter``, whose thread appends it
to rotating NDJSON files (``files``). docs/audit.md describes the records, the settings and the guarantees.
"""
