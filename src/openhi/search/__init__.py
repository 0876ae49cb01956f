"""Search: criteria and matching as pure functions, and the opaque pagination tokens every list uses."""
