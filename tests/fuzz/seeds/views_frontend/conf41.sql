CREATE VIEW adults AS SELECT * FROM user WHERE age >= 18;
