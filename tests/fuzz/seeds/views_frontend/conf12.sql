CREATE VIEW on1 AS SELECT *, flag + 1 AS f1 FROM item WHERE flag = 1;
