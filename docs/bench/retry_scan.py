# Cost of the retry lookup on a long log: 4 sessions x 100,000 rows, interleaved
# in arrival order (the server's schema), the query with and without a lower seq.
import sqlite3, time, uuid, os, json, statistics
path = '/tmp/holdspace-retry-scan.sqlite3'
if not os.path.exists(path):
    c = sqlite3.connect(path)
    c.executescript('''
    PRAGMA journal_mode=WAL;
    CREATE TABLE events (position INTEGER PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL,
      at INTEGER NOT NULL, command_id TEXT, event TEXT NOT NULL);
    CREATE UNIQUE INDEX events_by_session ON events (session_id, seq);''')
    sessions = [str(uuid.uuid4()) for _ in range(4)]
    body = json.dumps({"type": "vital_recorded", "pad": "x" * 400})
    rows = []
    for seq in range(1, 100_001):
        for s in sessions:
            rows.append((s, seq, seq * 80, str(uuid.uuid4()), body))
    c.executemany('INSERT INTO events (session_id, seq, at, command_id, event) VALUES (?,?,?,?,?)', rows)
    c.commit(); c.close()
c = sqlite3.connect(path)
s = c.execute('SELECT session_id FROM events LIMIT 1').fetchone()[0]
ids = [r[0] for r in c.execute('SELECT command_id FROM events WHERE session_id=? AND seq IN (99000, 99500)', (s,))]
ids.append(str(uuid.uuid4()))  # one never recorded
marks = ','.join('?' * len(ids))
def t(after):
    q = f'SELECT event FROM events WHERE session_id = ? AND seq > ? AND command_id IN ({marks}) ORDER BY seq'
    times = []
    for _ in range(7):
        t0 = time.perf_counter(); n = len(c.execute(q, [s, after, *ids]).fetchall()); times.append(time.perf_counter() - t0)
    return n, statistics.median(times) * 1000
for after in (0, 90_000, 95_000, 98_900):
    n, ms = t(after)
    print(f"after {after:>6}: rows read ~{100_000 - after:>6}, found {n}, median {ms:.2f} ms")
