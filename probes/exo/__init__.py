"""Exchange Online, asked through Microsoft Graph (only when the tier declares ``graph:``)."""
