CREATE VIEW tu AS SELECT t.title AS title, u.name AS author
FROM thread t LEFT JOIN user u ON t.author = u.id;
