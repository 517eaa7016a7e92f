"""Smart charging: sharing a site's grid connection and circuits among its EVs.

So far this package holds the worker's pure core, the allocation: the site
model (:mod:`.site`), the linear limits a site puts on its EVs' currents
(:mod:`.limits`), the weighted max-min fair allocation (:mod:`.allocation`) and
the order in which changes are sent (:mod:`.send_order`). The worker itself
(Kafka, one owner per site, charging profiles for OCPP 1.6, 2.0.1 and 2.1,
grid signals; issue 12) is to come and will build on these.
"""
