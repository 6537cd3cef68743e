-- Pods (SPEC 9a): API keys live in the control database, branches in each
-- pod's. A key's branch is checked by the service before the key is made
-- (service::keys::make_key, and pos keys), so the foreign key between the two,
-- which no database could hold across pods, goes. Every database gets the
-- same migrations: a pod's api_keys and a control database's branches
-- simply stay empty.
-- (No IF EXISTS: MySQL 8 lacks it, and V7 always made the key.)
ALTER TABLE api_keys DROP FOREIGN KEY fk_api_keys_branch;
