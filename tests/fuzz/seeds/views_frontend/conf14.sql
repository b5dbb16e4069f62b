CREATE VIEW a_names AS SELECT id, UPPER(name) AS up, LENGTH(name) AS len, n / 2 AS half,
  name || '!' AS bang
FROM user WHERE name LIKE 'a%';
