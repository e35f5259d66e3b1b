"""What is computed from stored runs: verified records, comparisons, statistics, the
leaderboard and reports."""
