"""Several amoCRM accounts in one gateway: what an account is and how it is configured."""
