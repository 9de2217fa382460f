"""
Several hubs as one, on Redis (PRODUCT.md "Several hubs as one: Redis").

Every hub serves the feeds, the API and the dashboard from a L{mirror} of
what the cluster's Redis holds; one hub at a time, the holder of the
L{lease}, acts on the engine and numbers the messages, and every message it
makes reaches Redis through one fenced script (L{writer}) that refuses a
writer whose term has passed.  What the leader wrote comes back to every
hub on a subscription (L{feed}); what a follower is asked to change is
handed to the leader (L{handover}).  The history is Redis's (L{history}),
so a client resumes on any hub.

This room imports only the leaves, C{status}, C{config} and C{engine}: the
pieces meet the rest of the hub through L{statushub.interfaces}, composed
in C{statushub.tap}.
"""
