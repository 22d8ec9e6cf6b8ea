"""Secrets on a command line or in its output are masked; everything else is kept as typed."""

from __future__ import annotations

import asyncio

import pytest

from devpocket.history.redaction import REDACTED, is_secret_name, redact
from tests.conftest import SettingsFactory
from tests.helpers import data
from tests.terminal.live import live_server

R = REDACTED

MASKED = [
    # option: --password and other secret-named options, = or space
    ("mysql --password=S3cret app", f"mysql --password={R} app"),
    ("mysql --password S3cret app", f"mysql --password {R} app"),
    ("gh auth login --token abc123", f"gh auth login --token {R}"),
    ("vault login --client-secret='a b'", f"vault login --client-secret='{R}'"),
    ("app --db-password=x --verbose", f"app --db-password={R} --verbose"),
    ("keytool -list -storepass changeit", f"keytool -list -storepass {R}"),
    # client: the -p forms of common clients, only after the client's name
    ("mysql -uroot -pS3cret app", f"mysql -uroot -p{R} app"),
    ("mysqldump -p'two words' app > app.sql", f"mysqldump -p'{R}' app > app.sql"),
    ("cd /srv && /bin/mariadb -pxyz && ls -p", f"cd /srv && /bin/mariadb -p{R} && ls -p"),
    ("sshpass -p hunter2 ssh deploy@host", f"sshpass -p {R} ssh deploy@host"),
    ("sshpass -phunter2 ssh host", f"sshpass -p{R} ssh host"),
    ("redis-cli -h cache -a hunter2 ping", f"redis-cli -h cache -a {R} ping"),
    ("mongosh -u admin -p hunter2 db", f"mongosh -u admin -p {R} db"),
    ("docker login -u me -p hunter2 registry.io", f"docker login -u me -p {R} registry.io"),
    ("sqlcmd -S db -U sa -P Secret1 -Q 'select 1'", f"sqlcmd -S db -U sa -P {R} -Q 'select 1'"),
    ("curl -u admin:hunter2 https://api.io", f"curl -u admin:{R} https://api.io"),
    ("http -a admin:hunter2 api.io/items", f"http -a admin:{R} api.io/items"),
    # assignment: NAME=value for secret names, with or without export or env
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", f"export AWS_SECRET_ACCESS_KEY={R}"),
    ("GITHUB_TOKEN=abc123 gh pr list", f"GITHUB_TOKEN={R} gh pr list"),
    ('env DB_PASSWORD="x y" ./run', f'env DB_PASSWORD="{R}" ./run'),
    ("export OPENAI_API_KEY='abc'", f"export OPENAI_API_KEY='{R}'"),
    ("export APP_SECRET=abc; make", f"export APP_SECRET={R}; make"),
    ("PGPASSWORD=hunter2 psql -h db", f"PGPASSWORD={R} psql -h db"),
    ("MYSQL_PWD=hunter2 mysql", f"MYSQL_PWD={R} mysql"),
    ("docker run -e NPM_TOKEN=abc node", f"docker run -e NPM_TOKEN={R} node"),
    ("helm install app --set db.password=abc", f"helm install app --set db.password={R}"),
    ("mount -o username=bob,password=hunter2 /mnt", f"mount -o username=bob,password={R} /mnt"),
    ("set -gx GITHUB_TOKEN abc", f"set -gx GITHUB_TOKEN {R}"),
    ("$env:API_KEY = 'abc'", f"$env:API_KEY = '{R}'"),
    # header: Authorization and other credential headers
    ("curl -H 'Authorization: Bearer abc.def' https://api", f"curl -H 'Authorization: Bearer {R}' https://api"),
    ('curl -H "authorization: token abc" x', f'curl -H "authorization: token {R}" x'),
    ('curl -H "X-Api-Key: 1234" https://x', f'curl -H "X-Api-Key: {R}" https://x'),
    ('http GET api.io Authorization:"Bearer abc"', f'http GET api.io Authorization:"Bearer {R}"'),
    (
        """python -c 'get(u, headers={"Authorization": "Bearer abc"})'""",
        f"""python -c 'get(u, headers={{"Authorization": "Bearer {R}"}})'""",
    ),
    ("export DB_PASS=hunter2", f"export DB_PASS={R}"),
    ("curl -H 'Cookie: session=abc; b=1' x", f"curl -H 'Cookie: {R}' x"),
    # url_credentials and url_query
    ("git clone https://user:pa55@git.io/r.git", f"git clone https://user:{R}@git.io/r.git"),
    ("psql postgresql://app:s3cret@db:5432/app", f"psql postgresql://app:{R}@db:5432/app"),
    ("curl 'https://x.io/a?token=abc&page=2'", f"curl 'https://x.io/a?token={R}&page=2'"),
    ("wget https://x.io/f?access_token=zz#top", f"wget https://x.io/f?access_token={R}#top"),
    ("curl https://x.io/v1?api_key=k1&key=k2", f"curl https://x.io/v1?api_key={R}&key={R}"),
    ("curl -d 'user=bob&password=abc' https://x", f"curl -d 'user=bob&password={R}' https://x"),
    # known_token: shapes of well-known tokens anywhere
    ("git clone https://ghp_" + "a" * 36 + "@github.com/o/r", f"git clone https://{R}@github.com/o/r"),
    ("echo github_pat_11ABCDEFG0_" + "b" * 30, f"echo {R}"),
    ("glab auth login -t glpat-" + "c" * 20, f"glab auth login -t {R}"),
    ("slack-cli send xoxb-1234-5678-abcdefghij", f"slack-cli send {R}"),
    ("aws configure set key_id AKIAIOSFODNN7EXAMPLE", f"aws configure set key_id {R}"),
    ("llm -k sk-proj-" + "d" * 24, f"llm -k {R}"),
    # config_line: name = value at the start of a line (output)
    ("[x]\naws_secret_key = abc\nregion = eu", f"[x]\naws_secret_key = {R}\nregion = eu"),
    ("  password: hunter2\n  user: bob", f"  password: {R}\n  user: bob"),
    ('{\n  "api_key": "abc",\n  "x": 1\n}', f'{{\n  "api_key": "{R}",\n  "x": 1\n}}'),
    # private_key
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\nNzaC1\n-----END OPENSSH PRIVATE KEY-----",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{R}\n-----END OPENSSH PRIVATE KEY-----",
    ),
]  # fmt: skip

UNCHANGED = [
    "ls -p",
    "grep -p pattern file",
    "echo password",
    "ssh -p 22 deploy@host",
    "mkdir -p a/b/c",
    "docker run -p 8080:80 nginx",
    "mysql -u root -p app",
    "mysql --password -u root",
    "docker login --password-stdin registry.io",
    "ps aux | grep mysql",
    "export PATH=$PATH:/opt/bin",
    "export TOKEN=$VAULT_TOKEN",
    'export SECRET="$(vault read -field=v secret/app)"',
    "echo $GITHUB_TOKEN",
    "cd $OLDPWD",
    "TOKENIZERS_PARALLELISM=false python train.py",
    "git commit -m 'rotate the token docs'",
    "curl https://example.com/search?q=token&page=2",
    "kubectl get secret app -o yaml",
    "app --no-auth localhost",
    "ssh git@github.com",
]


@pytest.mark.parametrize(("line", "expected"), MASKED)
def test_a_secret_is_replaced_and_the_rest_of_the_line_kept(line: str, expected: str) -> None:
    assert redact(line) == expected


@pytest.mark.parametrize("line", UNCHANGED)
def test_a_line_without_a_secret_is_left_as_typed(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize("line", [line for line, _ in MASKED])
def test_redacting_twice_changes_nothing_more(line: str) -> None:
    once = redact(line)
    assert redact(once) == once


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AWS_SECRET_ACCESS_KEY", True),
        ("github_token", True),
        ("DB_PASSWORD", True),
        ("SMTP_PASS", True),
        ("BYPASS_CACHE", False),
        ("MYSQL_PWD", True),
        ("PGPASSWORD", True),
        ("db.password", True),
        ("SECRET_KEY_BASE", True),
        ("OLDPWD", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("PATH", False),
        ("username", False),
    ],
)
def test_secret_names_are_told_by_their_words(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_a_long_output_is_redacted_throughout() -> None:
    output = "ok\n" * 5000 + "export API_TOKEN=abc\n" + "ok\n" * 5000
    assert redact(output) == "ok\n" * 5000 + f"export API_TOKEN={R}\n" + "ok\n" * 5000


async def test_a_terminal_block_is_stored_redacted(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(terminal_shell="/bin/bash")
    async with live_server(settings) as live:
        account = await live.account()
        async with live.terminal(account) as term:
            session_id = await term.create_local()
            await term.run(session_id, "export API_TOKEN=hunter2; echo TOKEN=$API_TOKEN")
            await term.action("block_finished")
        for _ in range(50):
            listed = data(await live.http.get("/api/v1/history/commands", headers=account.headers))
            if listed["commands"]:
                break
            await asyncio.sleep(0.1)
    [entry] = listed["commands"]
    assert entry["command"] == f"export API_TOKEN={R}; echo TOKEN=$API_TOKEN"
    assert entry["output"].strip() == f"TOKEN={R}"
    assert entry["session_id"] == session_id
