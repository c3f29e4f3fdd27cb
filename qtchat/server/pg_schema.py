"""The PostgreSQL schema of a cluster (pg_backend.py), its fixed statements, and the search query.

``SCHEMA`` is run, in one transaction under the advisory lock ``SCHEMA_LOCK``, by every node as it opens
(each statement is idempotent) and by ``qtchat-server migrate``.
"""

from __future__ import annotations

from .search_agent import fold, query_words

SCHEMA_VERSION = 3  # 2: qtchat_post() finds resends; 3: edits and deletions (qtchat_change())
SCHEMA_LOCK = 4_321_000_001  # the advisory lock that lets one node at a time make the schema

SCHEMA = [
    """DO $$ BEGIN
        IF to_regclass('message_ids') IS NULL THEN
            CREATE SEQUENCE message_ids;
            -- ids start at the current time in microseconds, as on one machine (a migration sets it higher)
            PERFORM setval('message_ids', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
        END IF;
    END $$""",
    """CREATE TABLE IF NOT EXISTS messages (
        id bigint PRIMARY KEY,
        room text NOT NULL,            -- the room's key
        seq bigint NOT NULL,           -- its place in the room: 1, 2, 3... (room_seq.last_seq is the last)
        ts bigint NOT NULL,            -- milliseconds since the epoch
        sender text NOT NULL,
        sender_key text NOT NULL,
        cid text,
        text text NOT NULL,
        words tsvector NOT NULL        -- to_tsvector('simple', search_agent.fold(text))
    )""",
    "CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id)",
    "CREATE INDEX IF NOT EXISTS messages_words ON messages USING gin (words)",
    "CREATE INDEX IF NOT EXISTS messages_sender_cid ON messages (sender_key, id) WHERE cid IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS room_seq (room text PRIMARY KEY, last_seq bigint NOT NULL)",
    """CREATE TABLE IF NOT EXISTS passes (
        token bigint NOT NULL,
        room text NOT NULL,
        ids bigint[] NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (token, room)
    )""",
    """CREATE TABLE IF NOT EXISTS read_markers (
        user_key text NOT NULL, room_key text NOT NULL, id bigint NOT NULL, PRIMARY KEY (user_key, room_key)
    )""",
    """CREATE TABLE IF NOT EXISTS mailbox (
        id bigint PRIMARY KEY,
        user_key text NOT NULL,
        ts bigint NOT NULL,
        sender text NOT NULL,
        sender_key text NOT NULL,
        cid text,
        text text NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS mailbox_user_id ON mailbox (user_key, id)",
    "CREATE INDEX IF NOT EXISTS mailbox_sender_cid ON mailbox (sender_key, id) WHERE cid IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS accounts (
        key text PRIMARY KEY, name text NOT NULL, password_hash text NOT NULL, admin boolean NOT NULL,
        created double precision NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS rooms (key text PRIMARY KEY, state jsonb NOT NULL)",
    """CREATE TABLE IF NOT EXISTS room_members (
        room text NOT NULL, member text NOT NULL, since bigint NOT NULL, PRIMARY KEY (room, member)
    )""",
    "CREATE TABLE IF NOT EXISTS bans (one int PRIMARY KEY CHECK (one = 1), state jsonb NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value bigint NOT NULL)",
    # a message sent again (a resend after a reconnect, to this node or another) is found by its sender, cid,
    # room and text under the room's lock: stored once however old, and once when two nodes store it at once
    "CREATE INDEX IF NOT EXISTS messages_resend ON messages (sender_key, cid) WHERE cid IS NOT NULL",
    # a room's messages of one pass: lock the room's counter row (held until the commit), find the rows that
    # are resends of stored messages, then take the ids of the others (so that they become visible in order),
    # store them and the pass's token row. The answer (kept in the token row too: post_answer() reads it):
    # per row its new id, or minus the stored message's id for a resend; then the stored ts of each resend,
    # in order; last the room's number of its last message (fanout.py delivers each room in that order).
    # Resends take no number: the new rows are numbered last - new + 1 .. last.
    """CREATE OR REPLACE FUNCTION qtchat_post(p_token bigint, p_room text, p_rows jsonb) RETURNS bigint[]
    LANGUAGE plpgsql AS $fn$
    DECLARE
        k int := jsonb_array_length(p_rows);
        fresh int;
        top bigint;
        resent bigint[];  -- per row: the id of the stored message it resends, or NULL
        resent_ts bigint[];
        taken bigint[];
        answer bigint[];
    BEGIN
        INSERT INTO room_seq (room, last_seq) VALUES (p_room, 0) ON CONFLICT (room) DO NOTHING;
        SELECT last_seq INTO top FROM room_seq WHERE room = p_room FOR UPDATE;
        -- a new snapshot, taken under the lock: a resend another node committed meanwhile is seen
        SELECT array_agg(s.id ORDER BY e.n), array_agg(s.ts ORDER BY e.n) INTO resent, resent_ts
            FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(m, n)
            LEFT JOIN LATERAL (SELECT id, ts FROM messages
                               WHERE sender_key = e.m->>2 AND cid = e.m->>3 AND cid IS NOT NULL
                                 AND room = p_room AND text = e.m->>4
                               ORDER BY id LIMIT 1) AS s ON true;
        fresh := k - cardinality(array_remove(resent, NULL));
        IF fresh > 0 THEN
            UPDATE room_seq SET last_seq = top + fresh WHERE room = p_room;
            top := top + fresh;
            SELECT array_agg(v ORDER BY v) INTO taken
                FROM (SELECT nextval('message_ids') AS v FROM generate_series(1, fresh)) AS s;
        END IF;
        IF fresh = k THEN  -- no resend (mostly)
            INSERT INTO messages (id, room, seq, ts, sender, sender_key, cid, text, words, reply_to)
                SELECT taken[e.n], p_room, top - k + e.n, (e.m->>0)::bigint, e.m->>1, e.m->>2, e.m->>3, e.m->>4,
                       to_tsvector('simple', e.m->>5), (e.m->>6)::bigint
                FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(m, n);
            answer := taken;
        ELSE
            INSERT INTO messages (id, room, seq, ts, sender, sender_key, cid, text, words, reply_to)
                SELECT taken[f.i], p_room, top - fresh + f.i, (f.m->>0)::bigint, f.m->>1, f.m->>2, f.m->>3,
                       f.m->>4, to_tsvector('simple', f.m->>5), (f.m->>6)::bigint
                FROM (SELECT e.m, row_number() OVER (ORDER BY e.n) AS i
                      FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(m, n)
                      WHERE resent[e.n] IS NULL) AS f;
            SELECT array_agg(CASE WHEN u.old IS NULL THEN taken[u.i] ELSE -u.old END ORDER BY u.n) INTO answer
                FROM (SELECT x.old, x.n, sum((x.old IS NULL)::int) OVER (ORDER BY x.n) AS i
                      FROM unnest(resent) WITH ORDINALITY AS x(old, n)) AS u;
            answer := answer || array_remove(resent_ts, NULL);
        END IF;
        answer := answer || top;
        INSERT INTO passes (token, room, ids) VALUES (p_token, p_room, answer);
        RETURN answer;
    END $fn$""",
    # edits and deletions (backend.py, point 9): the current text in place, ``changed`` the change's number
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited bigint NOT NULL DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted boolean NOT NULL DEFAULT false",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS changed bigint",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS reply_to bigint",  # the message of the room it answers
    "CREATE INDEX IF NOT EXISTS messages_room_changed ON messages (room, changed) WHERE changed IS NOT NULL",
    # a room's edits and deletions of one pass, each [id, new text or null, ts, author key or null, not before,
    # folded new text], under the room's lock (as qtchat_post: a change's number from message_ids becomes
    # visible in order in the room): per change [refusal or '', the message's sender, the change's number]
    """CREATE OR REPLACE FUNCTION qtchat_change(p_room text, p_rows jsonb) RETURNS jsonb
    LANGUAGE plpgsql AS $fn$
    DECLARE
        c jsonb;
        m record;
        n bigint;
        answer jsonb := '[]'::jsonb;
    BEGIN
        INSERT INTO room_seq (room, last_seq) VALUES (p_room, 0) ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM room_seq WHERE room = p_room FOR UPDATE;
        FOR c IN SELECT e FROM jsonb_array_elements(p_rows) AS e LOOP
            SELECT sender, sender_key, ts, deleted INTO m FROM messages
                WHERE id = (c->>0)::bigint AND room = p_room FOR UPDATE;
            IF NOT FOUND OR m.deleted THEN
                answer := answer || jsonb_build_array(jsonb_build_array('no_such_message', '', 0));
            ELSIF c->>3 IS NOT NULL AND m.sender_key <> c->>3 THEN
                answer := answer || jsonb_build_array(jsonb_build_array('not_author', '', 0));
            ELSIF c->>1 IS NOT NULL AND m.ts < (c->>4)::bigint THEN
                answer := answer || jsonb_build_array(jsonb_build_array('too_late', '', 0));
            ELSE
                n := nextval('message_ids');
                IF c->>1 IS NULL THEN
                    UPDATE messages SET text = '', words = ''::tsvector, deleted = true, changed = n
                        WHERE id = (c->>0)::bigint;
                ELSE
                    UPDATE messages SET text = c->>1, words = to_tsvector('simple', c->>5),
                                        edited = (c->>2)::bigint, changed = n
                        WHERE id = (c->>0)::bigint;
                END IF;
                answer := answer || jsonb_build_array(jsonb_build_array('', m.sender, n));
            END IF;
        END LOOP;
        RETURN answer;
    END $fn$""",
    # reactions (backend.py, point 11): who gave which to which message
    """CREATE TABLE IF NOT EXISTS reactions (
        message_id bigint NOT NULL, user_key text NOT NULL, emoji text NOT NULL,
        PRIMARY KEY (message_id, user_key, emoji)
    )""",
    # a message deleted (retention) takes its reactions with it
    """CREATE OR REPLACE FUNCTION qtchat_unreact() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        DELETE FROM reactions WHERE message_id = OLD.id;
        RETURN NULL;
    END $fn$""",
    "DROP TRIGGER IF EXISTS messages_reactions_delete ON messages",
    """CREATE TRIGGER messages_reactions_delete AFTER DELETE ON messages FOR EACH ROW EXECUTE FUNCTION qtchat_unreact()""",
    # a room's reactions of one pass, each [id, user key, emoji, on]: per reaction [refusal or '', the message's
    # counts once it is applied (an object), the user's own (a list)]; p_cap: MAX_REACTIONS
    """CREATE OR REPLACE FUNCTION qtchat_react(p_room text, p_rows jsonb, p_cap int) RETURNS jsonb
    LANGUAGE plpgsql AS $fn$
    DECLARE
        r jsonb;
        mid bigint;
        answer jsonb := '[]'::jsonb;
    BEGIN
        -- the room's counter row first, as qtchat_post() and qtchat_change() lock it: no deadlock between nodes
        INSERT INTO room_seq (room, last_seq) VALUES (p_room, 0) ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM room_seq WHERE room = p_room FOR UPDATE;
        FOR r IN SELECT e FROM jsonb_array_elements(p_rows) AS e LOOP
            mid := (r->>0)::bigint;
            PERFORM 1 FROM messages WHERE id = mid AND room = p_room AND NOT deleted FOR UPDATE;
            IF NOT FOUND THEN
                answer := answer || jsonb_build_array(jsonb_build_array('no_such_message', '{}'::jsonb, '[]'::jsonb));
                CONTINUE;
            END IF;
            IF (r->>3)::boolean THEN
                IF NOT EXISTS (SELECT 1 FROM reactions WHERE message_id = mid AND user_key = r->>1 AND emoji = r->>2)
                   AND (SELECT count(*) FROM reactions WHERE message_id = mid) >= p_cap THEN
                    answer := answer || jsonb_build_array(jsonb_build_array('too_many_reactions', '{}'::jsonb,
                                                                            '[]'::jsonb));
                    CONTINUE;
                END IF;
                INSERT INTO reactions VALUES (mid, r->>1, r->>2) ON CONFLICT DO NOTHING;
            ELSE
                DELETE FROM reactions WHERE message_id = mid AND user_key = r->>1 AND emoji = r->>2;
            END IF;
            answer := answer || jsonb_build_array(jsonb_build_array('',
                coalesce((SELECT jsonb_object_agg(emoji, n) FROM (SELECT emoji, count(*) AS n FROM reactions
                          WHERE message_id = mid GROUP BY emoji) AS c), '{}'::jsonb),
                coalesce((SELECT jsonb_agg(emoji) FROM reactions WHERE message_id = mid AND user_key = r->>1),
                         '[]'::jsonb)));
        END LOOP;
        RETURN answer;
    END $fn$""",
    # the cluster's id: its keys and channels in Redis begin with qtchat:<id>: (two clusters may share a Redis)
    """INSERT INTO meta (key, value) VALUES ('cluster', (random() * 9e15)::bigint) ON CONFLICT (key) DO NOTHING""",
    f"""INSERT INTO meta (key, value) VALUES ('schema', {SCHEMA_VERSION})
        ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, EXCLUDED.value)""",
]

# a message with its reply's parent as it is now (backend.py, point 10)
COLS = "m.id, m.room, m.ts, m.sender, m.text, m.cid, m.edited, m.deleted, m.reply_to, p.sender, p.text, p.deleted"
FROM = "messages AS m LEFT JOIN messages AS p ON p.id = m.reply_to AND p.room = m.room"
PARENTS = """SELECT id, room, sender, text, deleted FROM messages
    WHERE id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)"""
MARKERS = """INSERT INTO read_markers (user_key, room_key, id)
    SELECT e->>0, e->>1, (e->>2)::bigint FROM jsonb_array_elements($1::jsonb) AS e
    ON CONFLICT (user_key, room_key) DO UPDATE SET id = GREATEST(read_markers.id, EXCLUDED.id)"""
MAIL = """INSERT INTO mailbox (id, user_key, ts, sender, sender_key, cid, text)
    SELECT (e->>0)::bigint, e->>1, (e->>2)::bigint, e->>3, e->>4, e->>5, e->>6
    FROM jsonb_array_elements($1::jsonb) AS e"""
DELIVERED = """DELETE FROM mailbox AS m USING jsonb_array_elements($1::jsonb) AS d
    WHERE m.user_key = d->>0 AND m.id <= (d->>1)::bigint"""


def post_answer(answer: list[int], rows: int) -> tuple[list[int], list[int], int]:
    """``qtchat_post()``'s answer for ``rows`` rows: each row's id (negative: minus the id of the stored message
    it resends), the stored ts of each resend in order, and the room's last number."""
    return answer[:rows], answer[rows:-1], answer[-1]


def ts_query(query: str) -> str | None:
    """The tsquery for a search (None: no word): every word a prefix, the words ANDed. A word that folds to
    several (``e-mail``) is a phrase of them, the last a prefix, as the SQLite scan matches ``% e mail%``."""
    groups = []
    for word in query_words(query):
        parts = fold(word).split()
        if parts:
            quoted = [f"'{p}'" for p in parts]  # folded words hold only word characters: nothing to escape
            quoted[-1] += ":*"
            groups.append("(" + " <-> ".join(quoted) + ")")
    return " & ".join(groups) or None
TALLIES = """SELECT message_id, emoji, count(*), bool_or(user_key = $2) FROM reactions
    WHERE message_id IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint) GROUP BY message_id, emoji"""
