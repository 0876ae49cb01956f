"""Tags on data store and image set ARNs: TagResource, UntagResource, ListTagsForResource."""
