"""PushFile, InstallApk, UninstallApk, RunShellCommand (one route, told apart by `command`),
RunSyncCommand, BatchExportCloudPhoneData and BatchImportCloudPhoneData.

Every accepted request is validated in full and turned into one job per phone. RunShellCommand,
RunSyncCommand and UninstallApk run through the phones' ADB endpoints (test_adb.py covers what
they do on the phone); PushFile and InstallApk read their objects from the object store
(test_data_ops.py covers real objects; here the objects and buckets do not exist: CPS.0104,
CPS.0103), and so do export and import. Nothing may report success it did not have.
"""

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials

from cph_sdk import (
    JOB_FAILED,
    JOB_SUCCEEDED,
    PHONE_RUNNING,
    PHONE_STOPPED,
    BatchExportCloudPhoneDataRequest,
    BatchExportCloudPhoneDataRequestBody,
    BatchImportCloudPhoneDataRequest,
    BatchImportCloudPhoneDataRequestBody,
    InstallApkRequest,
    InstallApkRequestBody,
    ListJobsRequest,
    PushFileRequest,
    PushFileRequestBody,
    RestoreInfo,
    RunShellCommandRequest,
    RunShellCommandRequestBody,
    RunSyncCommandRequest,
    RunSyncCommandRequestBody,
    ShowJobRequest,
    StopCloudPhoneRequest,
    StopCloudPhoneRequestBody,
    StorageInfo,
    UninstallApkRequest,
    UninstallApkRequestBody,
    assert_job_item_failed,
    assert_job_item_ok,
    buy_running_servers,
    expect_error,
    list_jobs_of,
    missing_id,
    phone_status,
    raw_request,
    server_phones,
    wait_jobs,
    wait_jobs_succeeded,
    wait_phone_status,
)

NOT_SUPPORTED = "CPS.0323"

# ---- helpers --------------------------------------------------------------------------------


def push_file(client, content, phone_ids=None, server_ids=None, command="push"):
    body = PushFileRequestBody(command=command, content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.push_file(PushFileRequest(body=body))


def install_apk(client, content, phone_ids=None, server_ids=None, command="install"):
    body = InstallApkRequestBody(command=command, content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.install_apk(InstallApkRequest(body=body))


def uninstall_apk(client, content, phone_ids=None, server_ids=None, command="uninstall"):
    body = UninstallApkRequestBody(command=command, content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.uninstall_apk(UninstallApkRequest(body=body))


def run_shell(client, content, phone_ids=None, server_ids=None, command="shell"):
    body = RunShellCommandRequestBody(command=command, content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.run_shell_command(RunShellCommandRequest(body=body))


def run_sync(client, content, phone_ids=None, server_ids=None, command="shell"):
    body = RunSyncCommandRequestBody(command=command, content=content, phone_ids=phone_ids, server_ids=server_ids)
    return client.run_sync_command(RunSyncCommandRequest(body=body))


def storage_info(pid, **kw):
    args = {
        "phone_id": pid,
        "include_files": ["/data/app", "/data/local", "/data/media"],
        "exclude_files": ["/data/app/com.xx.xx-*"],
        "bucket_name": "mybucket",
        "object_path": "myimage/v1/backup.tar",
    }
    args.update(kw)
    return StorageInfo(**args)


def export_data(client, infos):
    body = BatchExportCloudPhoneDataRequestBody(storage_infos=infos)
    return client.batch_export_cloud_phone_data(BatchExportCloudPhoneDataRequest(body=body))


def restore_info(pid, **kw):
    args = {"phone_id": pid, "bucket_name": "mybucket", "object_path": "myimage/v1/backup.tar"}
    args.update(kw)
    return RestoreInfo(**args)


def import_data(client, infos):
    body = BatchImportCloudPhoneDataRequestBody(restore_infos=infos)
    return client.batch_import_cloud_phone_data(BatchImportCloudPhoneDataRequest(body=body))


def assert_honest_failures(client, resp, what: str, expected_phones):
    """Every job of `resp` ends -1 with CPS.0323 and a message naming `what`; nothing succeeds."""
    items = {i.phone_id: i for i in resp.jobs}
    assert sorted(items) == sorted(expected_phones)
    for pid in expected_phones:
        assert_job_item_ok(items[pid], "phone_id", pid)
    jobs = wait_jobs(client, resp.request_id)
    assert sorted(j.job_id for j in jobs) == sorted(i.job_id for i in resp.jobs)
    for j in jobs:
        assert j.status == JOB_FAILED, (j.job_id, j.status, j.error_code, j.error_msg)
        assert j.error_code == NOT_SUPPORTED, (j.job_id, j.error_code, j.error_msg)
        assert "cannot execute" in j.error_msg and f"'{what}'" in j.error_msg, j.error_msg
        assert j.begin_time and j.end_time
        assert j.phone_id in items
        shown = client.show_job(ShowJobRequest(job_id=j.job_id))
        assert shown.status == JOB_FAILED and shown.error_code == NOT_SUPPORTED
    return jobs


def assert_missing_objects(client, resp, expected_phones):
    """Every job of `resp` ends -1 with CPS.0104: the object it names is not in the store."""
    items = {i.phone_id: i for i in resp.jobs}
    assert sorted(items) == sorted(expected_phones)
    jobs = wait_jobs(client, resp.request_id)
    assert sorted(j.phone_id for j in jobs) == sorted(expected_phones)
    for j in jobs:
        assert j.status == JOB_FAILED, (j.job_id, j.status, j.error_code, j.error_msg)
        assert j.error_code == "CPS.0104", (j.error_code, j.error_msg)
        assert "obs://push-bucket/" in j.error_msg
    return jobs


def assert_no_jobs(client, request_id):
    """A rejected request leaves no job behind."""
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=request_id)), 404, "CPS.0050")


def expect_rejected(client, call, status, code):
    e = expect_error(call, status, code)
    assert_no_jobs(client, e.request_id)
    return e


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(client, cph, offer):
    """A server of this module: its last phone is stopped, the others run."""
    sid = buy_running_servers(client, cph, 1, offer)[0]
    phones = sorted(p.phone_id for p in server_phones(client, sid))
    r = client.stop_cloud_phone(StopCloudPhoneRequest(body=StopCloudPhoneRequestBody(phone_ids=[phones[-1]])))
    wait_jobs_succeeded(client, r.request_id)
    wait_phone_status(client, phones[-1], PHONE_STOPPED)
    return {"server_id": sid, "running": phones[:-1], "stopped": phones[-1], "all": phones}


@pytest.fixture(scope="module")
def running(server):
    return server["running"]


# ---- accepted requests become jobs that fail honestly ----------------------------------------


def test_push_file_of_a_missing_object_fails_its_jobs(client, running):
    phones = running[:2]
    r = push_file(client, "obs://push-bucket/my_apps/test.tar", phone_ids=phones)
    assert r.request_id
    assert_missing_objects(client, r, phones)
    for pid in phones:
        assert phone_status(client, pid) == PHONE_RUNNING


@pytest.mark.parametrize(
    "command,content",
    [
        ("install", "-t -r obs://push-bucket/my_apps/test.apk"),
        ("install", "obs://push-bucket/test.apk"),
        (
            "install-multiple",
            "-t -r obs://push-bucket/my_apps/test_part1.apk obs://push-bucket/my_apps/test_part_2.apk "
            "obs://push-bucket/my_apps/test_part3.apk",
        ),
    ],
)
def test_install_apk_of_missing_objects_fails_its_jobs(client, running, command, content):
    r = install_apk(client, content, phone_ids=running[:1], command=command)
    assert_missing_objects(client, r, running[:1])


def test_uninstalling_a_package_that_is_not_installed_fails(client, running):
    r = uninstall_apk(client, "com.myapp.test", phone_ids=running[:2])
    jobs = wait_jobs(client, r.request_id)
    assert sorted(j.phone_id for j in jobs) == sorted(running[:2])
    for j in jobs:
        assert j.status == JOB_FAILED and j.error_code == "CPS.0260", (j.error_code, j.error_msg)
        assert "Failure" in j.execute_msg


def test_run_shell_command_jobs_run_on_the_phone(client, running):
    r = run_shell(client, "ls -l /system", phone_ids=running[:1])
    (job,) = wait_jobs(client, r.request_id)
    assert job.status == JOB_SUCCEEDED, (job.error_code, job.error_msg)
    assert "build.prop" in job.execute_msg


def test_shell_accepts_pipes_and_conditions(client, running):
    r = run_shell(client, "getprop ro.serialno | grep -c . && echo done=1", phone_ids=running[:1])
    (job,) = wait_jobs(client, r.request_id)
    assert job.status == JOB_SUCCEEDED, (job.error_code, job.error_msg)
    assert job.execute_msg.split() == ["1", "done=1"]


def test_server_ids_target_every_phone_of_the_server(client, server):
    r = run_shell(client, "pm list packages", server_ids=[server["server_id"]])
    items = {i.phone_id: i for i in r.jobs}
    assert sorted(items) == server["all"]
    assert_job_item_failed(items[server["stopped"]], "phone_id", server["stopped"], "CPS.0141")
    for pid in server["running"]:
        assert_job_item_ok(items[pid], "phone_id", pid)
    jobs = wait_jobs(client, r.request_id)
    assert sorted(j.phone_id for j in jobs) == server["running"]
    assert all(j.status == JOB_SUCCEEDED and "package:" in j.execute_msg for j in jobs)
    assert all(j.server_id == server["server_id"] for j in jobs)


def test_phone_ids_win_over_server_ids(client, server, running):
    r = install_apk(client, "obs://push-bucket/a.apk", phone_ids=running[:1], server_ids=[server["server_id"]])
    assert [i.phone_id for i in r.jobs] == running[:1]
    assert len(list_jobs_of(client, r.request_id)) == 1


def test_per_phone_errors(client, server, running):
    unknown = missing_id()
    phones = [running[0], unknown, server["stopped"], running[0], "bad id!"]
    r = uninstall_apk(client, "-k com.myapp.test", phone_ids=phones)
    assert [i.phone_id for i in r.jobs] == phones
    assert_job_item_ok(r.jobs[0], "phone_id", running[0])
    assert_job_item_failed(r.jobs[1], "phone_id", unknown, "CPS.0004")
    assert_job_item_failed(r.jobs[2], "phone_id", server["stopped"], "CPS.0141")
    assert_job_item_failed(r.jobs[3], "phone_id", running[0], "CPS.0023")
    assert_job_item_failed(r.jobs[4], "phone_id", "bad id!", "CPS.0004")
    jobs = wait_jobs(client, r.request_id)
    assert [j.job_id for j in jobs] == [r.jobs[0].job_id]
    assert jobs[0].status == JOB_FAILED and jobs[0].error_code == "CPS.0260"


def test_only_unknown_phones_gives_items_and_no_jobs(client):
    ids = [missing_id(), missing_id()]
    r = run_shell(client, "ls", phone_ids=ids)
    for item, pid in zip(r.jobs, ids):
        assert_job_item_failed(item, "phone_id", pid, "CPS.0004")
    assert_no_jobs(client, r.request_id)


# ---- request validation ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["reboot", "PUSH", "", "install_multiple", None])
def test_unknown_command(client, running, command):
    expect_rejected(client, lambda: run_shell(client, "ls", phone_ids=running[:1], command=command), 400, "CPS.0117")


@pytest.mark.parametrize(
    "send,content,code",
    [
        # push: one obs://bucket/path.tar, at most 1024 bytes, documented characters only
        (push_file, None, "CPS.0118"),
        (push_file, "", "CPS.0118"),
        (push_file, "obs://push-bucket/test.zip", "CPS.0118"),
        (push_file, "push-bucket/test.tar", "CPS.0118"),
        (push_file, "obs://Push_Bucket/test.tar", "CPS.0118"),
        (push_file, "obs://push-bucket/a.tar obs://push-bucket/b.tar", "CPS.0118"),
        (push_file, "obs://push-bucket/a+b.tar", "CPS.0118"),
        (push_file, "obs://push-bucket/" + "a" * 1003 + ".tar", "CPS.0118"),
        # install: options, then exactly one .apk
        (install_apk, "-r obs://push-bucket/test.tar", "CPS.0119"),
        (install_apk, "obs://push-bucket/test", "CPS.0119"),
        (install_apk, "-r", "CPS.0118"),
        (install_apk, "-x obs://push-bucket/test.apk", "CPS.0118"),
        (install_apk, "obs://push-bucket/test.apk -r", "CPS.0118"),
        (install_apk, "obs://push-bucket/a.apk obs://push-bucket/b.apk", "CPS.0118"),
        (install_apk, "https://host/a.apk", "CPS.0118"),
        (install_apk, "obs://push-bucket/a.apk;reboot", "CPS.0118"),
        # uninstall: options, then a package name
        (uninstall_apk, "myapp", "CPS.0118"),
        (uninstall_apk, "-x com.myapp.test", "CPS.0118"),
        (uninstall_apk, "com.a com.b", "CPS.0118"),
        (uninstall_apk, "com.myapp.test && reboot", "CPS.0118"),
        # shell: at most 2048 bytes of the documented characters
        (run_shell, "echo hi > /data/x", "CPS.0118"),
        (run_shell, "echo $HOME", "CPS.0118"),
        (run_shell, "ls; reboot", "CPS.0118"),
        (run_shell, "echo 'quoted'", "CPS.0118"),
        (run_shell, "a" * 2049, "CPS.0118"),
        (run_shell, "   ", "CPS.0118"),
    ],
)
def test_content_rules(client, running, send, content, code):
    expect_rejected(client, lambda: send(client, content, phone_ids=running[:1]), 400, code)


def test_install_multiple_limits(client, running):
    fifty_one = " ".join(f"obs://push-bucket/p{i}.apk" for i in range(51))
    expect_rejected(
        client,
        lambda: install_apk(client, fifty_one, phone_ids=running[:1], command="install-multiple"),
        400,
        "CPS.0118",
    )
    expect_rejected(
        client,
        lambda: install_apk(
            client, "obs://push-bucket/a.apk obs://push-bucket/b.obb", phone_ids=running[:1], command="install-multiple"
        ),
        400,
        "CPS.0119",
    )
    fifty = " ".join(f"obs://push-bucket/p{i}.apk" for i in range(50))
    r = install_apk(client, fifty, phone_ids=running[:1], command="install-multiple")
    assert_missing_objects(client, r, running[:1])


def test_longest_push_content_is_accepted(client, running):
    content = "obs://push-bucket/" + "a" * 1002 + ".tar"
    assert len(content) == 1024
    r = push_file(client, content, phone_ids=running[:1])
    assert_missing_objects(client, r, running[:1])


@pytest.mark.parametrize("phone_ids,server_ids", [(None, None), ([], None), (None, []), ([], [])])
def test_no_targets(client, phone_ids, server_ids):
    expect_rejected(
        client, lambda: run_shell(client, "ls", phone_ids=phone_ids, server_ids=server_ids), 400, "CPS.0009"
    )


def test_unknown_server(client, server):
    expect_rejected(
        client,
        lambda: run_shell(client, "ls", server_ids=[server["server_id"], missing_id()]),
        400,
        "CPS.0097",
    )


def test_wrong_json_types(cph, running):
    creds = BasicCredentials(cph.ak, cph.sk, cph.project_id)
    path = f"/v1/{cph.project_id}/cloud-phone/phones/commands"
    for body, code in [
        ({"command": "shell", "content": 5, "phone_ids": running[:1]}, "CPS.0118"),
        ({"command": 1, "content": "ls", "phone_ids": running[:1]}, "CPS.0117"),
        ({"command": "shell", "content": "ls", "phone_ids": running[0]}, "CPS.0080"),
    ]:
        r = raw_request(cph.endpoint, "POST", path, credentials=creds, body=body)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == code, r.text


# ---- authorization per operation -----------------------------------------------------------


@pytest.fixture(scope="module")
def install_only_client(cph):
    return cph.client_for(cph.create_tenant(("cph:phones:installApk",)))


def test_each_command_needs_its_own_action(install_only_client):
    ids = [missing_id()]
    r = install_apk(install_only_client, "obs://push-bucket/a.apk", phone_ids=ids)
    assert_job_item_failed(r.jobs[0], "phone_id", ids[0], "CPS.0004")
    for call in (
        lambda: push_file(install_only_client, "obs://push-bucket/a.tar", phone_ids=ids),
        lambda: uninstall_apk(install_only_client, "com.a.b", phone_ids=ids),
        lambda: run_shell(install_only_client, "ls", phone_ids=ids),
        lambda: run_sync(install_only_client, "ls", phone_ids=ids),
        lambda: export_data(install_only_client, [storage_info(ids[0])]),
        lambda: import_data(install_only_client, [restore_info(ids[0])]),
    ):
        expect_error(call, 403, "CPS.0001")


# ---- RunSyncCommand -------------------------------------------------------------------------


def test_run_sync_command_answers_each_phones_outcome(client, server, running):
    unknown = missing_id()
    phones = running[:2] + [server["stopped"], unknown]
    r = run_sync(client, "ls -l /system", phone_ids=phones)
    assert r.request_id
    assert [j.phone_id for j in r.jobs] == phones
    for j in r.jobs[:2]:
        assert j.job_id
        assert j.status == JOB_SUCCEEDED, (j.error_code, j.error_msg)
        assert "build.prop" in j.execute_msg
    assert r.jobs[2].status == JOB_FAILED and r.jobs[2].error_code == "CPS.0141" and not r.jobs[2].job_id
    assert r.jobs[3].status == JOB_FAILED and r.jobs[3].error_code == "CPS.0004" and not r.jobs[3].job_id
    listed = list_jobs_of(client, r.request_id)
    assert sorted(j.job_id for j in listed) == sorted(j.job_id for j in r.jobs[:2])
    for j in listed:
        assert j.status == JOB_SUCCEEDED and j.end_time


def test_run_sync_command_reports_a_failing_command(client, running):
    r = run_sync(client, "ls /no/such/dir", phone_ids=running[:1])
    (j,) = r.jobs
    assert j.status == JOB_FAILED and j.error_code == "CPS.0260"
    assert "No such file or directory" in j.execute_msg


def test_run_sync_command_on_a_server(client, server):
    r = run_sync(client, "getprop ro.product.model", server_ids=[server["server_id"]])
    assert sorted(j.phone_id for j in r.jobs) == server["all"]
    by_phone = {j.phone_id: j for j in r.jobs}
    assert by_phone[server["stopped"]].status == JOB_FAILED
    assert by_phone[server["stopped"]].error_code == "CPS.0141"
    for p in server["running"]:
        assert by_phone[p].status == JOB_SUCCEEDED, by_phone[p]
        assert by_phone[p].execute_msg.strip()


@pytest.mark.parametrize("command", ["push", "install", "uninstall", "reboot", None])
def test_run_sync_command_only_runs_shell(client, running, command):
    expect_rejected(client, lambda: run_sync(client, "ls", phone_ids=running[:1], command=command), 400, "CPS.0117")


def test_run_sync_command_validation(client, running):
    expect_rejected(client, lambda: run_sync(client, "echo $PATH", phone_ids=running[:1]), 400, "CPS.0118")
    # Synchronous commands allow fewer characters than asynchronous ones: no pipes or `&`.
    expect_rejected(client, lambda: run_sync(client, "ls | grep a", phone_ids=running[:1]), 400, "CPS.0118")
    expect_rejected(client, lambda: run_sync(client, "ls && ls", phone_ids=running[:1]), 400, "CPS.0118")
    expect_rejected(client, lambda: run_sync(client, None, phone_ids=running[:1]), 400, "CPS.0118")
    expect_rejected(client, lambda: run_sync(client, "ls"), 400, "CPS.0009")
    sixteen = running[:1] + [missing_id() for _ in range(15)]
    expect_rejected(client, lambda: run_sync(client, "ls", phone_ids=sixteen), 400, "CPS.0209")
    fifteen = running[:1] + [missing_id() for _ in range(14)]
    r = run_sync(client, "ls", phone_ids=fifteen)
    assert len(r.jobs) == 15 and r.jobs[0].status == JOB_SUCCEEDED
    assert all(j.error_code == "CPS.0004" for j in r.jobs[1:])


# ---- BatchExportCloudPhoneData / BatchImportCloudPhoneData --------------------------------------


def assert_jobs_fail_with(client, resp, expected_phones, code):
    jobs = wait_jobs(client, resp.request_id)
    assert sorted(j.phone_id for j in jobs) == sorted(expected_phones)
    for j in jobs:
        assert j.status == JOB_FAILED and j.error_code == code, (j.error_code, j.error_msg)
    return jobs


def test_export_to_a_bucket_that_does_not_exist_fails(client, server, running):
    unknown = missing_id()
    r = export_data(
        client,
        [storage_info(running[0]), storage_info(running[1]), storage_info(server["stopped"]), storage_info(unknown)],
    )
    assert [i.phone_id for i in r.jobs] == [running[0], running[1], server["stopped"], unknown]
    assert_job_item_failed(r.jobs[2], "phone_id", server["stopped"], "CPS.0141")
    assert_job_item_failed(r.jobs[3], "phone_id", unknown, "CPS.0004")
    jobs = assert_jobs_fail_with(client, r, running[:2], "CPS.0103")
    assert all("mybucket" in j.error_msg for j in jobs)


def test_import_of_an_object_no_export_wrote_is_refused(client, running):
    # The only export to this path so far failed (the bucket does not exist): nothing is
    # registered, so the request is refused as a whole and no phone gets a job.
    r = export_data(client, [storage_info(running[0])])
    assert_jobs_fail_with(client, r, running[:1], "CPS.0103")
    infos = [restore_info(running[0]), restore_info(running[1])]
    e = expect_rejected(client, lambda: import_data(client, infos), 400, "CPS.0172")
    assert "object_path is unregistered" in e.error_msg


def test_export_of_data_misc_with_system(client, running):
    info = storage_info(
        running[0], include_files=["/data/misc", "/data/system", "/data/system_de"], exclude_files=None
    )
    assert_jobs_fail_with(client, export_data(client, [info]), running[:1], "CPS.0103")


@pytest.mark.parametrize(
    "override,code",
    [
        ({"include_files": None}, "CPS.0168"),
        ({"include_files": []}, "CPS.0168"),
        ({"include_files": ["/system/app"]}, "CPS.0168"),
        ({"include_files": ["data/app"]}, "CPS.0168"),
        ({"include_files": ["/data/*/x"]}, "CPS.0168"),
        ({"include_files": ["/data/../etc"]}, "CPS.0168"),
        ({"include_files": ["/data/a b"]}, "CPS.0168"),
        ({"include_files": ["/data/misc/wifi", "/data/system", "/data/system_de"]}, "CPS.0168"),
        ({"include_files": ["/data/misc"]}, "CPS.0168"),
        ({"exclude_files": ["/etc/hosts"]}, "CPS.0169"),
        ({"exclude_files": ["/data/a*b"]}, "CPS.0169"),
        ({"bucket_name": None}, "CPS.0134"),
        ({"bucket_name": "My_Bucket"}, "CPS.0134"),
        ({"bucket_name": "ab"}, "CPS.0134"),
        ({"object_path": None}, "CPS.0135"),
        ({"object_path": "a b.tar"}, "CPS.0135"),
        ({"object_path": "x" * 1025}, "CPS.0135"),
        ({"phone_id": None}, "CPS.0167"),
    ],
)
def test_export_rules(client, running, override, code):
    expect_rejected(client, lambda: export_data(client, [storage_info(running[0], **override)]), 400, code)


def test_export_request_level_rules(client, running):
    expect_rejected(client, lambda: export_data(client, None), 400, "CPS.0167")
    expect_rejected(client, lambda: export_data(client, []), 400, "CPS.0167")
    too_many = [storage_info(missing_id()) for _ in range(101)]
    expect_rejected(client, lambda: export_data(client, too_many), 400, "CPS.0170")
    # One bad item rejects the whole request: the valid phone gets no job either.
    infos = [storage_info(running[0]), storage_info(running[1], bucket_name="BAD")]
    expect_rejected(client, lambda: export_data(client, infos), 400, "CPS.0134")


@pytest.mark.parametrize(
    "override,code",
    [
        ({"bucket_name": None}, "CPS.0134"),
        ({"bucket_name": "-bucket"}, "CPS.0134"),
        ({"object_path": None}, "CPS.0135"),
        ({"object_path": "x" * 1025}, "CPS.0135"),
        ({"phone_id": None}, "CPS.0171"),
    ],
)
def test_import_rules(client, running, override, code):
    expect_rejected(client, lambda: import_data(client, [restore_info(running[0], **override)]), 400, code)


def test_import_request_level_rules(client):
    expect_rejected(client, lambda: import_data(client, None), 400, "CPS.0171")
    expect_rejected(client, lambda: import_data(client, []), 400, "CPS.0171")
    too_many = [restore_info(missing_id()) for _ in range(101)]
    expect_rejected(client, lambda: import_data(client, too_many), 400, "CPS.0171")


# ---- tenants never reach each other's phones ---------------------------------------------------


def test_other_project_cannot_command_our_phones(client, other_client, server, running):
    r = run_shell(other_client, "ls", phone_ids=running[:2])
    for item, pid in zip(r.jobs, running[:2]):
        assert_job_item_failed(item, "phone_id", pid, "CPS.0004")
    expect_error(lambda: run_shell(other_client, "ls", server_ids=[server["server_id"]]), 400, "CPS.0097")
    s = run_sync(other_client, "ls", phone_ids=running[:1])
    assert s.jobs[0].error_code == "CPS.0004" and not s.jobs[0].job_id
    e = export_data(other_client, [storage_info(running[0])])
    assert_job_item_failed(e.jobs[0], "phone_id", running[0], "CPS.0004")
    # The other project has registered no export, so its import is refused before any phone
    # is looked at.
    expect_rejected(other_client, lambda: import_data(other_client, [restore_info(running[0])]), 400, "CPS.0172")


def test_other_project_cannot_see_our_command_jobs(client, other_client, running):
    r = push_file(client, "obs://push-bucket/x.tar", phone_ids=running[:1])
    wait_jobs(client, r.request_id)
    expect_error(lambda: other_client.list_jobs(ListJobsRequest(request_id=r.request_id)), 404, "CPS.0050")
    expect_error(lambda: other_client.show_job(ShowJobRequest(job_id=r.jobs[0].job_id)), 404, "CPS.0011")
