CREATE VIEW busy AS SELECT thread FROM comment GROUP BY thread HAVING COUNT(*) >= 2;
CREATE VIEW busy_n AS SELECT thread, COUNT(*) AS n FROM comment GROUP BY thread
HAVING COUNT(*) >= 2;
