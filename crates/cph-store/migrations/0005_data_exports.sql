-- Objects written by BatchExportCloudPhoneData: an export job that succeeded registers its
-- bucket and object path for the project, and BatchImportCloudPhoneData restores only from
-- registered paths. A later export to the same path replaces the row.
CREATE TABLE data_exports (
    project_id  TEXT NOT NULL,
    bucket_name TEXT NOT NULL,
    object_path TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    exported_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, bucket_name, object_path)
);
