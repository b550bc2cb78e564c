DROP TABLE project_schema.collaboration_edits;
DROP TABLE project_schema.collaboration_documents;
