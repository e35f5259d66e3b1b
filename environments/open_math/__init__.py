"""open-math: AlphaEvolve's open problems, each verified exactly against its published record
table (circle packings, Heilbronn problems, distance ratios, the first autocorrelation
inequality, Erdős's minimum overlap problem, the kissing configuration in 11 dimensions)."""
