-- The Acme Portal's access tables, as an internal portal keeps them. Portable SQL: the same script
-- builds data/portal.db (SQLite, see make_db.py) and the PostgreSQL copy the tests compare against.
CREATE TABLE departments (
  code        VARCHAR(20) PRIMARY KEY,
  name        VARCHAR(100) NOT NULL
);
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  login         VARCHAR(50) NOT NULL,
  email         VARCHAR(200),
  full_name     VARCHAR(200),
  department    VARCHAR(20) REFERENCES departments (code),
  active        BOOLEAN NOT NULL,
  created_at    TIMESTAMP NOT NULL,
  last_login_at TIMESTAMP
);
CREATE TABLE roles (
  id           VARCHAR(30) PRIMARY KEY,
  name         VARCHAR(100) NOT NULL,
  permissions  VARCHAR(200) NOT NULL
);
CREATE TABLE projects (
  id          INTEGER PRIMARY KEY,
  project_key VARCHAR(20) NOT NULL,
  name        VARCHAR(100) NOT NULL,
  visibility  VARCHAR(20) NOT NULL,
  budget      NUMERIC(12, 2),
  created_on  DATE NOT NULL
);
CREATE TABLE role_grants (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users (id),
  role_id     VARCHAR(30) NOT NULL REFERENCES roles (id),
  project_id  INTEGER REFERENCES projects (id),
  granted_at  TIMESTAMP NOT NULL,
  status      VARCHAR(10) NOT NULL
);

INSERT INTO departments VALUES ('ENG', 'Engineering'), ('FIN', 'Finance'), ('OPS', 'Operations');

INSERT INTO users VALUES
  (101, 'adavis',  'ada.davis@acme.test',    'Ada Davis',    'ENG', TRUE,  '2021-03-01 09:00:00', '2024-05-02 17:45:10'),
  (102, 'bkhan',   'bilal.khan@acme.test',   'Bilal Khan',   'ENG', TRUE,  '2021-06-15 10:30:00', '2024-05-01 08:12:00'),
  (103, 'cmorgan', 'chloe.morgan@acme.test', 'Chloe Morgan', 'FIN', TRUE,  '2022-01-10 14:00:00', NULL),
  (104, 'dlee',    'dan.lee@acme.test',      'Dan Lee',      'OPS', FALSE, '2020-11-20 08:00:00', '2023-12-18 11:00:00'),
  (105, 'svc-ci',  NULL,                     'CI robot',     'ENG', TRUE,  '2022-08-08 00:00:00', '2024-05-03 02:00:00');

INSERT INTO roles VALUES
  ('portal_admin', 'Portal Administrator', 'admin'),
  ('maintainer',   'Project Maintainer',   'read;write;manage'),
  ('developer',    'Developer',            'read;write'),
  ('viewer',       'Viewer',               'read');

INSERT INTO projects VALUES
  (1, 'PAY',  'Payments',       'private',  125000.00, '2021-04-01'),
  (2, 'WEB',  'Public website', 'public',    20000.50, '2021-07-15'),
  (3, 'DATA', 'Data platform',  'internal',      NULL, '2022-02-01');

INSERT INTO role_grants VALUES
  (1,  101, 'portal_admin', NULL, '2021-03-01 09:05:00', 'active'),
  (2,  101, 'maintainer',   1,    '2021-04-01 12:00:00', 'active'),
  (3,  102, 'developer',    1,    '2021-06-16 09:00:00', 'active'),
  (4,  102, 'maintainer',   2,    '2022-03-01 09:00:00', 'active'),
  (5,  103, 'viewer',       1,    '2022-01-11 10:00:00', 'active'),
  (6,  103, 'viewer',       3,    '2022-02-02 10:00:00', 'revoked'),
  (7,  104, 'developer',    3,    '2022-02-03 10:00:00', 'active'),
  (8,  105, 'developer',    1,    '2022-08-08 00:05:00', 'active'),
  (9,  105, 'developer',    2,    '2022-08-08 00:05:00', 'active'),
  (10, 105, 'developer',    3,    '2022-08-08 00:05:00', 'active');
