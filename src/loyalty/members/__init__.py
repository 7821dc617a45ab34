"""Members: the brand's customers, addressed by the brand's own member id."""
