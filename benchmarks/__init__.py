"""pipectl's benchmark suite: issue 7's performance targets as ratios measured in one run."""
