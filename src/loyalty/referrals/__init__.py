"""Member-gets-member referrals: a state machine with fraud controls."""
