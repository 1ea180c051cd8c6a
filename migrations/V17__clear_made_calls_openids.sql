-- A call's openid list is needed only until the call is made (or given up): afterwards who was
-- sent to is in campaign_recipients. Lists of calls already made are emptied, as tagcast now
-- does when a call is made, so they do not keep every recipient's openid (tens of MB per
-- million-follower send) and erasure has only calls not yet made to look at.
UPDATE campaign_chunks SET openids = '{}' WHERE state <> 'pending' AND cardinality(openids) > 0;
