"""ListJobs and ShowJob."""

import pytest

from cph_sdk import (
    JOB_SUCCEEDED,
    ImportTrafficRequest,
    ImportTrafficRequestBody,
    ListJobsRequest,
    ShowJobRequest,
    expect_error,
    missing_id,
    wait_jobs_succeeded,
)


def import_traffic(client, phone_ids):
    return client.import_traffic(
        ImportTrafficRequest(body=ImportTrafficRequestBody(traffic_type="direct", phone_ids=phone_ids))
    )


@pytest.fixture(scope="module")
def two_requests(client, phone_pool):
    """Two finished requests: one with three phone jobs, one with one."""
    phones = phone_pool.take_ids(4)
    r1 = import_traffic(client, phones[:3])
    r2 = import_traffic(client, phones[3:])
    wait_jobs_succeeded(client, r1.request_id)
    wait_jobs_succeeded(client, r2.request_id)
    return {"r1": r1, "r2": r2, "phones": phones}


def test_list_jobs_by_request_id(client, two_requests):
    r1 = two_requests["r1"]
    r = client.list_jobs(ListJobsRequest(request_id=r1.request_id))
    assert r.request_id and r.request_id != r1.request_id
    assert {j.job_id for j in r.jobs} == {j.job_id for j in r1.jobs}
    assert sorted(j.phone_id for j in r.jobs) == sorted(two_requests["phones"][:3])
    for j in r.jobs:
        assert j.status == JOB_SUCCEEDED
        assert j.begin_time and j.end_time
        assert j.server_id
        assert not j.error_code


def test_list_jobs_by_request_ids(client, two_requests):
    ids = f"{two_requests['r1'].request_id},{two_requests['r2'].request_id}"
    r = client.list_jobs(ListJobsRequest(request_ids=ids))
    assert sorted(j.phone_id for j in r.jobs) == sorted(two_requests["phones"])


def test_list_jobs_pagination(client, two_requests):
    rid = two_requests["r1"].request_id
    full = [j.job_id for j in client.list_jobs(ListJobsRequest(request_id=rid)).jobs]
    paged = []
    for offset in range(len(full)):
        page = client.list_jobs(ListJobsRequest(request_id=rid, offset=offset, limit=1)).jobs
        assert len(page) == 1
        paged.append(page[0].job_id)
    assert paged == full


def test_list_jobs_too_many_request_ids(client, two_requests):
    ids = [two_requests["r1"].request_id] + [missing_id() for _ in range(20)]
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_ids=",".join(ids))), 400, "CPS.0161")


def test_list_jobs_20_request_ids_is_the_limit(client, two_requests):
    ids = [two_requests["r1"].request_id] + [missing_id() for _ in range(19)]
    r = client.list_jobs(ListJobsRequest(request_ids=",".join(ids)))
    assert {j.job_id for j in r.jobs} == {j.job_id for j in two_requests["r1"].jobs}


def test_list_jobs_unknown_request(client):
    expect_error(lambda: client.list_jobs(ListJobsRequest(request_id=missing_id())), 404, "CPS.0050")


def test_list_jobs_without_request_id(client):
    expect_error(lambda: client.list_jobs(ListJobsRequest()), 400, "CPS.0049")


def test_show_job(client, two_requests):
    item = two_requests["r2"].jobs[0]
    j = client.show_job(ShowJobRequest(job_id=item.job_id))
    assert j.request_id
    assert j.job_id == item.job_id
    assert j.phone_id == item.phone_id
    assert j.server_id
    assert j.status == JOB_SUCCEEDED
    assert j.begin_time and j.end_time
    assert not j.error_code


def test_show_unknown_job(client):
    expect_error(lambda: client.show_job(ShowJobRequest(job_id=missing_id())), 404, "CPS.0011")
