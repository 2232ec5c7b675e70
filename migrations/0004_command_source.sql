-- Commands also arrive over MQTT (issue #7). `source` says where a command came from, and
-- each result waits in the outbox of that channel: Foreman's batch endpoints, or the
-- command's status topic on the broker. Existing rows came from Foreman.
ALTER TABLE commands ADD COLUMN source TEXT NOT NULL DEFAULT 'foreman';
ALTER TABLE command_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'foreman';
CREATE INDEX command_outbox_channel ON command_outbox (channel, seq);
