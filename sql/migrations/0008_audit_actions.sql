-- The actions an audit event may record, listed: the same list as the AuditAction enum in ConsentCore (a store
-- test compares them), so an event the code does not know cannot be written, by the server or by hand.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known CHECK (action IN (
    'tenant.created', 'key.created', 'key.revoked', 'purpose.created', 'purpose.updated', 'notice.created',
    'consent.granted', 'consent.pending', 'consent.confirmed', 'consent.reconfirmed', 'consent.expired',
    'consent.withdrawn', 'interaction.received', 'suppression.added', 'subject.erased', 'request.received',
    'request.completed', 'request.cancelled', 'retention.purged', 'settings.origins_changed',
    'settings.whatsapp_changed', 'console.signed_in', 'console.signed_out'
));
