CREATE VIEW counts AS SELECT thread, COUNT(*) AS n FROM comment GROUP BY thread;
CREATE VIEW total AS SELECT COUNT(*) AS n, SUM(score) AS s FROM comment;
