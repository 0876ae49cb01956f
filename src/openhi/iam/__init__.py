"""IAM, pure: policy documents, their evaluation, managed policies, principals and the action catalogue."""
