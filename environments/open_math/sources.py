"""The sources the record tables cite, named once (docs/open-math.md gives the full list)."""

NOTEBOOK = (
    "Novikov et al., AlphaEvolve (Google DeepMind, 2025), Appendix B and the public "
    "mathematical_results notebook (github.com/google-deepmind/alphaevolve_results)"
)
GGTW = (
    "Georgiev, Gomez-Serrano, Tao, Wagner, Mathematical exploration and discovery at scale "
    "(arXiv:2511.02864, 2025), as tabulated in teorth/optimizationproblems"
)
THETA = "Wang et al., ThetaEvolve: test-time learning on open problems (arXiv:2511.23473, 2025)"
TTT = "Yuksekgonul et al., Learning to Discover at Test Time (TTT-Discover, 2026)"
SHINKA = "Lange, Imajuku, Cetin, ShinkaEvolve (arXiv:2509.19349, ICLR 2026)"
FRIEDMAN = "E. Friedman's Packing Center, as cited by the AlphaEvolve notebook"
# The best known value before AlphaEvolve, as the AlphaEvolve notebook reports it.
BEFORE = "best before AlphaEvolve"
