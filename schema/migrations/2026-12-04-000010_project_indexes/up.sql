-- Listings walk these in order (keyset pages): mine by last change or by name, the public
-- gallery by last change; trashed projects are left out by the predicate.
CREATE INDEX projects_mine_updated_idx ON project_schema.projects (owner_id, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX projects_mine_name_idx ON project_schema.projects (owner_id, name, id)
    WHERE deleted_at IS NULL;
CREATE INDEX projects_gallery_idx ON project_schema.projects (updated_at DESC, id DESC)
    WHERE is_public AND deleted_at IS NULL;
