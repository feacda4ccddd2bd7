"""The paper's definitions, in one place: its tasks, test cells and categories, its geometry
words, the record contract, Table 3 (columns, task groups, Eq. 3/5/4) and its printed tables."""
