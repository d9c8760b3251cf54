"""A killed control plane loses no job and leaves no phone in a transitional status.

The server is killed with SIGKILL in the middle of a batch restart of 1,000 phones and started
again on the same store. Every job must then reach a terminal status (2 or -1) and no phone may be
left creating, resetting, restarting or stopping.
"""

import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import conftest
from conftest import BACKEND, CphServer, create_database, drop_database
from cph_sdk import (
    ListCloudPhonesRequest,
    PhoneProperty,
    RestartCloudPhoneRequest,
    RestartCloudPhoneRequestBody,
    buy_server,
    list_jobs_of,
    load_offer,
    make_client,
    poll,
)

TRANSITIONAL = {1, 3, 4, 7}
PHONES = 1000


def all_phones(client, server_ids):
    out = []
    for sid in server_ids:
        offset = 0
        while True:
            r = client.list_cloud_phones(ListCloudPhonesRequest(server_id=sid, offset=offset, limit=200))
            out.extend(r.phones)
            offset += len(r.phones)
            if not r.phones or offset >= r.count:
                break
    return out


def test_kill_9_mid_batch_loses_no_job(tmp_path_factory):
    base = Path(tempfile.mkdtemp(prefix="cph-crash-"))
    db_name, db_url = (None, None)
    if BACKEND == "postgres":
        db_name, db_url = create_database()
    saved = dict(conftest.PHONE_DURATIONS)
    # Slow phones so the kill lands while every restart is in flight; short leases so a
    # PostgreSQL replica notices the dead owner quickly.
    conftest.PHONE_DURATIONS.update(
        {
            "CPH_PHONE_BOOT_MS": "3000",
            "CPH_PHONE_STOP_MS": "500",
            "CPH_PHONE_RESET_MS": "500",
            "CPH_JOB_LEASE_SECS": "3",
        }
    )
    server = CphServer(base / "data", db_url)
    try:
        server.start()
        client = make_client(server.endpoint, server.ak, server.sk, server.project_id)
        offer = load_offer(client)
        # The largest phone model of the offered server model keeps the number of servers low.
        models = [
            m
            for m in offer.catalog["phone_models"]
            if m.server_model_name == offer.server_model_name and m.image_label == offer.image_label
        ]
        best = max(models, key=lambda m: m.phone_capacity)
        offer.phone_model_name, offer.phone_capacity = best.phone_model_name, best.phone_capacity
        offer.phone_model_version = best.phone_model_version or 0
        n_servers = math.ceil(PHONES / offer.phone_capacity)
        server.admin("capacity", "set", offer.server_model_name, str(n_servers + 10))
        server_ids, buy_requests = [], []
        while len(server_ids) < n_servers:
            r = buy_server(client, server, min(10, n_servers - len(server_ids)), offer)
            server_ids += r.server_ids
            buy_requests.append(r.request_id)
        for rid in buy_requests:
            poll("creation jobs", lambda: list_jobs_of(client, rid), lambda js: all(j.status == 2 for j in js), 120)
        phones = all_phones(client, server_ids)[:PHONES]
        assert len(phones) == PHONES
        assert all(p.status == 2 for p in phones)

        resp = client.restart_cloud_phone(
            RestartCloudPhoneRequest(
                body=RestartCloudPhoneRequestBody(phones=[PhoneProperty(phone_id=p.phone_id) for p in phones])
            )
        )
        assert all(j.job_id for j in resp.jobs) and len(resp.jobs) == PHONES
        # Wait until the batch is under way (phones restarting), then kill the process.
        poll(
            "phones restarting",
            lambda: all_phones(client, server_ids[:1]),
            lambda ps: any(p.status == 4 for p in ps),
            30,
        )
        time.sleep(0.5)
        server.proc.kill()
        server.proc.wait(10)

        # The restarted server rewrites bootstrap.json with its new port; drop the stale endpoint
        # so that start() waits for the new one.
        bpath = server.data_dir / "bootstrap.json"
        stale = json.loads(bpath.read_text())
        stale.pop("api_endpoint")
        bpath.write_text(json.dumps(stale))
        server.start()
        client = make_client(server.endpoint, server.ak, server.sk, server.project_id)
        jobs = poll(
            "every job terminal after the restart",
            lambda: list_jobs_of(client, resp.request_id),
            lambda js: len(js) == PHONES and all(j.status in (2, -1) for j in js),
            120,
            0.5,
        )
        assert all(j.status == 2 for j in jobs), [(j.job_id, j.status, j.error_code) for j in jobs if j.status != 2][:5]
        after = all_phones(client, server_ids)
        stuck = [(p.phone_id, p.status) for p in after if p.status in TRANSITIONAL]
        assert not stuck, stuck[:10]
        assert all(p.status == 2 for p in after[:PHONES])
    finally:
        conftest.PHONE_DURATIONS.clear()
        conftest.PHONE_DURATIONS.update(saved)
        server.stop()
        if db_name:
            drop_database(db_name)
        shutil.rmtree(base, ignore_errors=True)
