"""The gateway's connection to amoCRM: stored tokens, refreshes, the shared outbound budget."""
