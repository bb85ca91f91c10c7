-- One database and one role per service; each role owns only its database.
CREATE ROLE applications LOGIN PASSWORD 'applications';
CREATE DATABASE applications OWNER applications;
CREATE ROLE mentoring LOGIN PASSWORD 'mentoring';
CREATE DATABASE mentoring OWNER mentoring;
CREATE ROLE awards LOGIN PASSWORD 'awards';
CREATE DATABASE awards OWNER awards;
CREATE ROLE notifications LOGIN PASSWORD 'notifications';
CREATE DATABASE notifications OWNER notifications;
