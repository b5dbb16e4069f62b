CREATE VIEW top_threads AS SELECT thread, COUNT(*) AS n FROM comment GROUP BY thread
ORDER BY n DESC LIMIT 1;
