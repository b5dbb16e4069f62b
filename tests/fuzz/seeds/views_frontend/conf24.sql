CREATE VIEW star AS SELECT * FROM user;
CREATE VIEW names AS SELECT id, name, age + 1 AS next, address.city AS city FROM user;
