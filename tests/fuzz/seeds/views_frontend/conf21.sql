CREATE VIEW r AS SELECT id, score * -1 AS neg FROM post ORDER BY neg LIMIT 2;
