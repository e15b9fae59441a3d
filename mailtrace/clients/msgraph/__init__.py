"""Microsoft Graph, read-only: the client and its sign-in."""
