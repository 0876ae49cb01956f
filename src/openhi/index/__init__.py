"""The index: the transactional record of data stores, image sets and tags, behind a port with SQL
adapters.
"""
