-- When the miner took a command's action (it answered, or dropped the socket of a reboot).
-- The reboot cooldown counts only reboots that reached the miner: one refused before
-- anything happened (wrong login, unreachable) did not reboot it. Rows from before this
-- column count as sent once executing, as the cooldown did then.
ALTER TABLE commands ADD COLUMN sent_ms INTEGER;
UPDATE commands SET sent_ms = executing_ms;
CREATE INDEX commands_miner_sent ON commands (miner, command, sent_ms);
