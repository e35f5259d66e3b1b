"""The read-only web viewer over the store (``progressbench serve``) and the matplotlib plots
(``progressbench plot``). See README.md beside this file and docs/viewer.md."""
