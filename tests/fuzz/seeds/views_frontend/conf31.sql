CREATE VIEW counts AS SELECT thread, COUNT(*) AS n FROM comment GROUP BY thread;
