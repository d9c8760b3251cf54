-- Phones per project, kept in step with inserts and deletes of phones, so an unfiltered
-- ListCloudPhones does not count 100,000 index entries per request.
CREATE TABLE project_phone_counts (
    project_id TEXT PRIMARY KEY,
    phones     BIGINT NOT NULL
);
INSERT INTO project_phone_counts (project_id, phones)
    SELECT project_id, COUNT(*) FROM phones GROUP BY project_id;
