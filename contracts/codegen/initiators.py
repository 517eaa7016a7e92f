"""Which side sends the request of each OCPP action: the hand-written input of the generator.

The JSON schemas say what a payload looks like, not who sends it; the
specifications do. This table is taken from them, per version:

- 1.6: OCPP 1.6 edition 2, §4 "Operations Initiated by Charge Point" and §5
  "Operations Initiated by Central System"; the security whitepaper edition 3,
  §5 "Messages" (each ``.req`` says "sent by the Central System to the Charge
  Point" or the reverse).
- 2.0.1 and 2.1: Part 2, "Messages, Datatypes & Enumerations", §1 "Messages":
  each ``...Request`` says "PDU sent by the Charging Station to the CSMS" or the
  reverse, or is described that way by its use case where the sentence is
  missing (the 2.1 additions: V2X, DER control, tariffs, periodic event
  streams, battery swap).

``"both"`` is DataTransfer only ("sent either by the CSMS to the Charging
Station or vice versa"; 1.6 lists it in §4.3 and §5.6). The generator fails
when an action has a schema but no entry here, or an entry but no schema.
"""

from __future__ import annotations

from typing import Final, Literal

Initiator = Literal["station", "csms", "both"]

_S: Final = "station"
_C: Final = "csms"

V16: Final[dict[str, Initiator]] = {
    # §4 Operations Initiated by Charge Point
    "Authorize": _S,
    "BootNotification": _S,
    "DataTransfer": "both",  # §4.3 and §5.6
    "DiagnosticsStatusNotification": _S,
    "FirmwareStatusNotification": _S,
    "Heartbeat": _S,
    "MeterValues": _S,
    "StartTransaction": _S,
    "StatusNotification": _S,
    "StopTransaction": _S,
    # §5 Operations Initiated by Central System
    "CancelReservation": _C,
    "ChangeAvailability": _C,
    "ChangeConfiguration": _C,
    "ClearCache": _C,
    "ClearChargingProfile": _C,
    "GetCompositeSchedule": _C,
    "GetConfiguration": _C,
    "GetDiagnostics": _C,
    "GetLocalListVersion": _C,
    "RemoteStartTransaction": _C,
    "RemoteStopTransaction": _C,
    "ReserveNow": _C,
    "Reset": _C,
    "SendLocalList": _C,
    "SetChargingProfile": _C,
    "TriggerMessage": _C,
    "UnlockConnector": _C,
    "UpdateFirmware": _C,
    # Security whitepaper edition 3, §5 Messages
    "CertificateSigned": _C,  # §5.1
    "DeleteCertificate": _C,  # §5.3
    "ExtendedTriggerMessage": _C,  # §5.5
    "GetInstalledCertificateIds": _C,  # §5.7
    "GetLog": _C,  # §5.9
    "InstallCertificate": _C,  # §5.11
    "LogStatusNotification": _S,  # §5.13
    "SecurityEventNotification": _S,  # §5.15
    "SignCertificate": _S,  # §5.17
    "SignedFirmwareStatusNotification": _S,  # §5.19
    "SignedUpdateFirmware": _C,  # §5.21
}

V201: Final[dict[str, Initiator]] = {
    "Authorize": _S,
    "BootNotification": _S,
    "CancelReservation": _C,
    "CertificateSigned": _C,
    "ChangeAvailability": _C,
    "ClearCache": _C,
    "ClearChargingProfile": _C,
    "ClearDisplayMessage": _C,
    "ClearVariableMonitoring": _C,
    "ClearedChargingLimit": _S,
    "CostUpdated": _C,
    "CustomerInformation": _C,
    "DataTransfer": "both",
    "DeleteCertificate": _C,
    "FirmwareStatusNotification": _S,
    "Get15118EVCertificate": _S,
    "GetBaseReport": _C,
    "GetCertificateStatus": _S,
    "GetChargingProfiles": _C,
    "GetCompositeSchedule": _C,
    "GetDisplayMessages": _C,
    "GetInstalledCertificateIds": _C,
    "GetLocalListVersion": _C,
    "GetLog": _C,
    "GetMonitoringReport": _C,
    "GetReport": _C,
    "GetTransactionStatus": _C,
    "GetVariables": _C,
    "Heartbeat": _S,
    "InstallCertificate": _C,
    "LogStatusNotification": _S,
    "MeterValues": _S,
    "NotifyChargingLimit": _S,
    "NotifyCustomerInformation": _S,
    "NotifyDisplayMessages": _S,
    "NotifyEVChargingNeeds": _S,
    "NotifyEVChargingSchedule": _S,
    "NotifyEvent": _S,
    "NotifyMonitoringReport": _S,
    "NotifyReport": _S,
    "PublishFirmware": _C,  # to a Local Controller, which is a station to the CSMS
    "PublishFirmwareStatusNotification": _S,
    "ReportChargingProfiles": _S,
    "RequestStartTransaction": _C,
    "RequestStopTransaction": _C,
    "ReservationStatusUpdate": _S,
    "ReserveNow": _C,
    "Reset": _C,
    "SecurityEventNotification": _S,
    "SendLocalList": _C,
    "SetChargingProfile": _C,
    "SetDisplayMessage": _C,
    "SetMonitoringBase": _C,
    "SetMonitoringLevel": _C,
    "SetNetworkProfile": _C,
    "SetVariableMonitoring": _C,
    "SetVariables": _C,
    "SignCertificate": _S,
    "StatusNotification": _S,
    "TransactionEvent": _S,
    "TriggerMessage": _C,
    "UnlockConnector": _C,
    "UnpublishFirmware": _C,
    "UpdateFirmware": _C,
}

# 2.1 keeps every 2.0.1 action with its direction and adds 27. Where Part 2 §1
# has no "sent by" sentence, the quote is from the use case that sends it.
V21: Final[dict[str, Initiator]] = {
    **V201,
    "AFRRSignal": _C,  # "The CSMS sends a AFRRSignalRequest"
    "AdjustPeriodicEventStream": _C,  # N14: "CSMS sends a AdjustPeriodicEventStreamRequest"
    "BatterySwap": _S,  # "Message sent by Charging Station when a battery is swapped"
    "ChangeTransactionTariff": _C,  # "CSMS sends a ChangeTransactionTariffRequest"
    "ClearDERControl": _C,  # R04, configure DER control settings at Charging Station
    "ClearTariffs": _C,  # I10, "Upon receiving a ClearTariffsRequest" (the station)
    "ClosePeriodicEventStream": _S,  # N13: "Charging Station sends a ClosePeriodicEvent..."
    "GetCertificateChainStatus": _S,  # M07: "Charging Station sends a GetCertificateChain..."
    "GetDERControl": _C,  # "Charging Station receives a GetDERControlRequest"
    "GetPeriodicEventStream": _C,  # N12: "The CSMS sends a GetPeriodicEventStreamRequest"
    "GetTariffs": _C,  # "CSMS sends GetTariffsRequest"
    "NotifyAllowedEnergyTransfer": _C,  # "Message sent by CSMS to update the list of ..."
    "NotifyDERAlarm": _S,  # "CS sends a NotifyDERAlarmRequest"
    "NotifyDERStartStop": _S,  # "CS will send a NotifyDERStartStopRequest"
    "NotifyPeriodicEventStream": _S,  # a SEND, Part 4 §4.2.4: no response
    "NotifyPriorityCharging": _S,  # "Message sent by Charging Station to notify CSMS"
    "NotifySettlement": _S,  # "Charging Station sends a NotifySettlementRequest"
    "NotifyWebPaymentStarted": _C,  # "CSMS optionally sends a NotifyWebPaymentStarted..."
    "OpenPeriodicEventStream": _S,  # N11: "by sending an OpenPeriodicEventStreamRequest to CSMS"
    "PullDynamicScheduleUpdate": _S,  # "This message is sent by a Charging Station"
    "ReportDERControl": _S,  # "Reports DER controls requested by a GetDERControlRequest"
    "RequestBatterySwap": _C,  # "CSMS sends a RequestBatterySwapRequest"
    "SetDERControl": _C,  # R04, configure DER control settings at Charging Station
    "SetDefaultTariff": _C,  # "CSMS sends SetDefaultTariffRequest to Charging Station"
    "UpdateDynamicSchedule": _C,  # "update a setpoint or limit in a dynamic charging profile"
    "UsePriorityCharging": _C,  # "Message sent by CSMS to tell Charging Station to switch"
    "VatNumberValidation": _S,  # "Charging Station MAY send a VatNumberValidationRequest"
}

INITIATORS: Final[dict[str, dict[str, Initiator]]] = {"1.6": V16, "2.0.1": V201, "2.1": V21}
