CREATE VIEW posts AS SELECT t.title AS title, u.name AS author
FROM thread t JOIN user u ON t.author = u.id;
