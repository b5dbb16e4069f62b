CREATE VIEW stats AS SELECT grp, COUNT(*) AS n, COUNT(x) AS nx, COUNT(DISTINCT x) AS dx,
  SUM(x) AS s, MIN(x) AS lo, MAX(x) AS hi, AVG(x) AS avg
FROM m GROUP BY grp;
