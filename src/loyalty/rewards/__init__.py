"""The rewards catalog as members see it, and coupons issued from it."""
