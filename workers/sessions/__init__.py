"""The sessions worker: authorization, OCPP transactions, and session records.

It answers Authorize, StartTransaction, StopTransaction and TransactionEvent
with an idToken (the gateway delegates them), follows MeterValues and the
other TransactionEvents, and writes one ``csms.sessions.v1`` record per change
of a charging session.

``logic``
    :class:`SessionsLogic`: from one event to a decision (pure).
``ocpp16``, ``ocpp2``
    The handlers per OCPP version; the offline oddities each one handles.
``model``
    Sessions, energy accounting, session records.
``id_tokens``
    The authorization list and the authorization decision.
``meter``
    Energy register readings out of meter values, in Wh.
``service``, ``settings``
    The process (``csms worker sessions``) and its settings.
``id_tokens_cli``
    ``csms id-tokens``: add, list and remove id tokens.

docs/workers.md describes it for operators and downstream developers.
"""
