-- teamaccess schema version 1 (postgresql), as written by its create_all; do not edit.
CREATE TABLE account (
	id SERIAL NOT NULL,
	email VARCHAR(254) NOT NULL,
	name VARCHAR(120),
	mfa_enabled BOOLEAN NOT NULL,
	os_login VARCHAR(64),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (email),
	UNIQUE (os_login)
);
CREATE TABLE audit_event (
	id SERIAL NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	actor_email VARCHAR(254) NOT NULL,
	actor_login VARCHAR(64),
	action VARCHAR(40) NOT NULL,
	team_id INTEGER,
	team_name VARCHAR(300),
	app_name VARCHAR(300),
	target_email VARCHAR(300),
	before TEXT,
	after TEXT,
	outcome VARCHAR(8) NOT NULL,
	reason TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_audit_target ON audit_event (target_email);
CREATE INDEX ix_audit_team_at ON audit_event (team_id, id);
CREATE TABLE meta (
	key VARCHAR(64) NOT NULL,
	value VARCHAR(255) NOT NULL,
	PRIMARY KEY (key)
);
CREATE TABLE team (
	id SERIAL NOT NULL,
	name VARCHAR(30) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (name)
);
CREATE TABLE app (
	id SERIAL NOT NULL,
	name VARCHAR(30) NOT NULL,
	team_id INTEGER,
	owner_account_id INTEGER,
	locked BOOLEAN NOT NULL,
	locked_at TIMESTAMP WITH TIME ZONE,
	created_by_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT ck_app_one_owner CHECK ((team_id IS NULL) <> (owner_account_id IS NULL)),
	CONSTRAINT ck_app_lock_team_only CHECK (locked = false OR team_id IS NOT NULL),
	UNIQUE (name),
	FOREIGN KEY(team_id) REFERENCES team (id),
	FOREIGN KEY(owner_account_id) REFERENCES account (id),
	FOREIGN KEY(created_by_id) REFERENCES account (id)
);
CREATE INDEX ix_app_owner ON app (owner_account_id);
CREATE INDEX ix_app_team ON app (team_id);
CREATE TABLE membership (
	id SERIAL NOT NULL,
	team_id INTEGER NOT NULL,
	account_id INTEGER NOT NULL,
	role VARCHAR(16) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (team_id, account_id),
	CONSTRAINT ck_membership_role CHECK (role IN ('admin', 'member', 'viewer')),
	FOREIGN KEY(team_id) REFERENCES team (id) ON DELETE CASCADE,
	FOREIGN KEY(account_id) REFERENCES account (id) ON DELETE CASCADE
);
CREATE INDEX ix_membership_account ON membership (account_id);
CREATE TABLE "grant" (
	id SERIAL NOT NULL,
	app_id INTEGER NOT NULL,
	account_id INTEGER NOT NULL,
	can_view BOOLEAN NOT NULL,
	can_deploy BOOLEAN NOT NULL,
	can_operate BOOLEAN NOT NULL,
	can_manage BOOLEAN NOT NULL,
	origin VARCHAR(16) NOT NULL,
	granted_by_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (app_id, account_id),
	CONSTRAINT ck_grant_has_view CHECK (can_view = true),
	FOREIGN KEY(app_id) REFERENCES app (id) ON DELETE CASCADE,
	FOREIGN KEY(account_id) REFERENCES account (id) ON DELETE CASCADE,
	FOREIGN KEY(granted_by_id) REFERENCES account (id)
);
CREATE INDEX ix_grant_account ON "grant" (account_id);
CREATE TABLE resource (
	id SERIAL NOT NULL,
	app_id INTEGER NOT NULL,
	kind VARCHAR(16) NOT NULL,
	name VARCHAR(64) NOT NULL,
	plan VARCHAR(64) NOT NULL,
	quantity INTEGER NOT NULL,
	monthly_cents INTEGER NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(app_id) REFERENCES app (id) ON DELETE CASCADE
);
CREATE INDEX ix_resource_app ON resource (app_id);
CREATE OR REPLACE FUNCTION teamaccess_audit_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event FOR EACH ROW EXECUTE FUNCTION teamaccess_audit_append_only();
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
