-- The first view is fine; the second uses a window function, outside the SQL subset
-- (SPEC section 2): loading this file is an UnsupportedSqlError naming view ranked_threads.
CREATE VIEW open_threads AS
SELECT * FROM thread WHERE status = 'open';

CREATE VIEW ranked_threads AS
SELECT id, title, ROW_NUMBER() OVER (ORDER BY last_activity DESC) AS rank
FROM thread;
