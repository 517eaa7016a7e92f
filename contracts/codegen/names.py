"""Names the schemas do not give: the hand-written naming input of the generator.

The OCPP 1.6 core schemas inline every nested object and enumeration; the
names here are the ones OCPP 1.6 edition 2 §7 "Types" uses for them (the
security-whitepaper schemas carry ``definitions`` with names, which are used
as they are). An inline type is keyed by ``"<schema file stem>:<path>"``, the
path being property names joined by dots with ``[]`` for array items. Several
keys naming the same type are deduplicated when their generated shape is
identical; the generator fails on an inline type without a name here, on a
name here that no schema uses, and on one name given two different shapes.
"""

from __future__ import annotations

from typing import Final

V16_INLINE: Final[dict[str, str]] = {
    "AuthorizeResponse:idTagInfo": "IdTagInfo",  # §7.27
    "AuthorizeResponse:idTagInfo.status": "AuthorizationStatus",  # §7.2
    "StartTransactionResponse:idTagInfo": "IdTagInfo",  # §7.27
    "StartTransactionResponse:idTagInfo.status": "AuthorizationStatus",  # §7.2
    "StopTransactionResponse:idTagInfo": "IdTagInfo",  # §7.27
    "StopTransactionResponse:idTagInfo.status": "AuthorizationStatus",  # §7.2
    "SendLocalList:localAuthorizationList[].idTagInfo": "IdTagInfo",  # §7.27
    "SendLocalList:localAuthorizationList[].idTagInfo.status": "AuthorizationStatus",  # §7.2
    "SendLocalList:localAuthorizationList[]": "AuthorizationData",  # §7.1
    "SendLocalList:updateType": "UpdateType",  # §7.48
    "SendLocalListResponse:status": "UpdateStatus",  # §7.47
    "MeterValues:meterValue[]": "MeterValue",  # §7.33
    "MeterValues:meterValue[].sampledValue[]": "SampledValue",  # §7.43
    "MeterValues:meterValue[].sampledValue[].context": "ReadingContext",  # §7.35
    "MeterValues:meterValue[].sampledValue[].format": "ValueFormat",  # §7.49
    "MeterValues:meterValue[].sampledValue[].measurand": "Measurand",  # §7.31
    "MeterValues:meterValue[].sampledValue[].phase": "Phase",  # §7.34
    "MeterValues:meterValue[].sampledValue[].location": "Location",  # §7.30
    "MeterValues:meterValue[].sampledValue[].unit": "UnitOfMeasure",  # §7.45
    "StopTransaction:transactionData[]": "MeterValue",  # §7.33
    "StopTransaction:transactionData[].sampledValue[]": "SampledValue",  # §7.43
    "StopTransaction:transactionData[].sampledValue[].context": "ReadingContext",  # §7.35
    "StopTransaction:transactionData[].sampledValue[].format": "ValueFormat",  # §7.49
    "StopTransaction:transactionData[].sampledValue[].measurand": "Measurand",  # §7.31
    "StopTransaction:transactionData[].sampledValue[].phase": "Phase",  # §7.34
    "StopTransaction:transactionData[].sampledValue[].location": "Location",  # §7.30
    "StopTransaction:transactionData[].sampledValue[].unit": "UnitOfMeasure",  # §7.45
    "RemoteStartTransaction:chargingProfile": "ChargingProfile",  # §7.8
    # §7.10
    "RemoteStartTransaction:chargingProfile.chargingProfilePurpose": "ChargingProfilePurposeType",
    "RemoteStartTransaction:chargingProfile.chargingProfileKind": "ChargingProfileKindType",  # §7.9
    # §7.37, spelt ReccurrencyKindType there
    "RemoteStartTransaction:chargingProfile.recurrencyKind": "RecurrencyKindType",
    "RemoteStartTransaction:chargingProfile.chargingSchedule": "ChargingSchedule",  # §7.13
    # §7.12
    "RemoteStartTransaction:chargingProfile.chargingSchedule.chargingRateUnit": (
        "ChargingRateUnitType"
    ),
    # §7.14
    "RemoteStartTransaction:chargingProfile.chargingSchedule.chargingSchedulePeriod[]": (
        "ChargingSchedulePeriod"
    ),
    "SetChargingProfile:csChargingProfiles": "ChargingProfile",  # §7.8
    # §7.10
    "SetChargingProfile:csChargingProfiles.chargingProfilePurpose": "ChargingProfilePurposeType",
    "SetChargingProfile:csChargingProfiles.chargingProfileKind": "ChargingProfileKindType",  # §7.9
    # §7.37, spelt ReccurrencyKindType there
    "SetChargingProfile:csChargingProfiles.recurrencyKind": "RecurrencyKindType",
    "SetChargingProfile:csChargingProfiles.chargingSchedule": "ChargingSchedule",  # §7.13
    # §7.12
    "SetChargingProfile:csChargingProfiles.chargingSchedule.chargingRateUnit": (
        "ChargingRateUnitType"
    ),
    # §7.14
    "SetChargingProfile:csChargingProfiles.chargingSchedule.chargingSchedulePeriod[]": (
        "ChargingSchedulePeriod"
    ),
    "GetCompositeScheduleResponse:chargingSchedule": "ChargingSchedule",  # §7.13
    # §7.12
    "GetCompositeScheduleResponse:chargingSchedule.chargingRateUnit": "ChargingRateUnitType",
    # §7.14
    "GetCompositeScheduleResponse:chargingSchedule.chargingSchedulePeriod[]": (
        "ChargingSchedulePeriod"
    ),
    "ClearChargingProfile:chargingProfilePurpose": "ChargingProfilePurposeType",  # §7.10
    "GetCompositeSchedule:chargingRateUnit": "ChargingRateUnitType",  # §7.12
    "GetConfigurationResponse:configurationKey[]": "KeyValue",  # §7.29
    "BootNotificationResponse:status": "RegistrationStatus",  # §7.38
    "CancelReservationResponse:status": "CancelReservationStatus",  # §7.5
    "ChangeAvailability:type": "AvailabilityType",  # §7.4
    "ChangeAvailabilityResponse:status": "AvailabilityStatus",  # §7.3
    "ChangeConfigurationResponse:status": "ConfigurationStatus",  # §7.22
    "ClearCacheResponse:status": "ClearCacheStatus",  # §7.20
    "ClearChargingProfileResponse:status": "ClearChargingProfileStatus",  # §7.21
    "DataTransferResponse:status": "DataTransferStatus",  # §7.23
    "DiagnosticsStatusNotification:status": "DiagnosticsStatus",  # §7.24
    "FirmwareStatusNotification:status": "FirmwareStatus",  # §7.25
    "GetCompositeScheduleResponse:status": "GetCompositeScheduleStatus",  # §7.26
    "RemoteStartTransactionResponse:status": "RemoteStartStopStatus",  # §7.39
    "RemoteStopTransactionResponse:status": "RemoteStartStopStatus",  # §7.39
    "ReserveNowResponse:status": "ReservationStatus",  # §7.40
    "Reset:type": "ResetType",  # §7.42
    "ResetResponse:status": "ResetStatus",  # §7.41
    "SetChargingProfileResponse:status": "ChargingProfileStatus",  # §7.11
    "StatusNotification:errorCode": "ChargePointErrorCode",  # §7.6
    "StatusNotification:status": "ChargePointStatus",  # §7.7
    "StopTransaction:reason": "Reason",  # §7.36
    "TriggerMessage:requestedMessage": "MessageTrigger",  # §7.32
    "TriggerMessageResponse:status": "TriggerMessageStatus",  # §7.44
    "UnlockConnectorResponse:status": "UnlockStatus",  # §7.46
}

# The 1.6 core schemas define MeterValue (§7.33) twice, inline in MeterValues.json
# and in StopTransaction.json, and the two copies differ: StopTransaction's lists
# no "Hertz" unit and allows an empty sampledValue. Both are the one MeterValue of
# the spec, and the sessions worker reads both alike, so they are merged into one
# type, on the lenient side: a StopTransaction must not be refused for a reading
# its MeterValues twin would carry. Each merge is reported in docs/contracts.md
# ("Where the types and the schemas disagree"); every other difference between
# two schemas is an error.

# Enumerations merged into the union of their values: version -> name -> why.
ENUM_SUPERSETS: Final[dict[str, dict[str, str]]] = {
    "1.6": {
        # The 1.6 errata (3.86) say the unit of a Frequency reading is Hertz.
        "UnitOfMeasure": "MeterValues.json lists Hertz, StopTransaction.json does not",
    },
    "2.0.1": {},
    "2.1": {},
}

# Keywords dropped where one schema is stricter than the other copy of the same
# type: version -> "<schema file stem>:<path>" -> (keyword, why).
RELAXATIONS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "1.6": {
        "MeterValues:meterValue[].sampledValue": (
            "minItems",
            "StopTransaction.json has no minItems on the same property of MeterValue",
        ),
    },
    "2.0.1": {},
    "2.1": {},
}

# Wire names whose mechanical snake_case is wrong (an acronym the rule splits).
SNAKE_CASE: Final[dict[str, str]] = {
    "evMaxV2XEnergyRequest": "ev_max_v2x_energy_request",
    "evMinV2XEnergyRequest": "ev_min_v2x_energy_request",
    "prioritizedEMAIDs": "prioritized_emaids",
}
