// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IRECRegistry
 * @notice Renewable Energy Certificate registry after ERC-1888: registrar-approved meters and
 * their signed readings, devices, 15-minute-granular certificates (one ERC-1155 token id per
 * certificate, 1 unit = 1 Wh) committing to the readings behind them, retirement claims and
 * revocation.
 */
interface IRECRegistry {
    // ----------------------------------------------------------------------------------
    // Types
    // ----------------------------------------------------------------------------------

    /// @notice Pending: never approved. A registrar approves a meter, and may suspend it.
    enum MeterStatus {
        Pending,
        Approved,
        Suspended
    }

    /**
     * @notice A meter as returned by {meter}. `owner` is the top 20 bytes of the meter id (ids
     * are owner-bound, so nobody can take another owner's id); `capacityW` is the approved
     * capacity, `signingKey` the key (EOA or ERC-1271 contract) that signs its readings.
     */
    struct MeterRecord {
        address owner;
        MeterStatus status;
        uint64 capacityW;
        address signingKey;
    }

    /// @notice One 15-minute reading as a meter signs it (EIP-712, absent values signed as 0).
    struct MeterReading {
        bytes32 meterId;
        uint64 intervalStart;
        uint32 intervalSeconds;
        uint64 importWh;
        uint64 exportWh;
    }

    enum DeviceStatus {
        Pending,
        Approved,
        Suspended
    }

    /// @notice What a device owner submits to {registerDevice}.
    struct DeviceInput {
        bytes32 technology; // e.g. "SOLAR_PV", "WIND_ONSHORE"
        uint64 capacityW; // nameplate capacity in watts
        bytes32 gridArea; // bidding zone / country, e.g. "DE-50HZ"
        uint64 commissionedAt; // unix seconds
        bytes32 meterId; // the caller's approved meter, unique across all devices
    }

    /// @notice A registered device as returned by {device}.
    struct Device {
        address owner;
        DeviceStatus status;
        bytes32 technology;
        uint64 capacityW;
        bytes32 gridArea;
        uint64 commissionedAt;
        bytes32 meterId;
    }

    /// @notice A certificate as returned by {certificate}; technology and grid area come from the device.
    struct CertificateView {
        uint32 deviceId;
        bytes32 technology;
        bytes32 gridArea;
        uint64 periodStart;
        uint64 periodEnd;
        uint64 issuedAt;
        uint64 volumeWh;
        uint64 claimedWh;
        bool revoked;
    }

    /// @notice Retirement data attached to a claim (only emitted, never stored).
    struct ClaimData {
        string beneficiary;
        string purpose;
        uint64 consumptionStart;
        uint64 consumptionEnd;
        bytes32 location;
    }

    // ----------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------

    /// @notice A registrar approved `meterId` (also on re-approval, key rotation or capacity change).
    event MeterApproved(bytes32 indexed meterId, address indexed owner, uint64 capacityW, address signingKey);

    /// @notice A registrar suspended `meterId`: its readings no longer verify, its device cannot issue.
    event MeterSuspended(bytes32 indexed meterId);

    event DeviceRegistered(
        uint32 indexed deviceId,
        address indexed owner,
        bytes32 technology,
        uint64 capacityW,
        bytes32 gridArea,
        uint64 commissionedAt,
        bytes32 meterId
    );

    event DeviceStatusChanged(
        uint32 indexed deviceId,
        DeviceStatus oldStatus,
        DeviceStatus newStatus,
        address indexed by
    );

    event CertificateIssued(
        uint256 indexed certId,
        uint32 indexed deviceId,
        address indexed to,
        uint64 periodStart,
        uint64 periodEnd,
        uint64 volumeWh,
        bytes32 evidenceRoot
    );

    event CertificateClaimed(
        uint256 indexed certId,
        address indexed holder,
        uint256 amountWh,
        string beneficiary,
        string purpose,
        uint64 consumptionStart,
        uint64 consumptionEnd,
        bytes32 location,
        uint256 claimId
    );

    /// @notice `certId` was revoked; its slots are free again unless some of its Wh were retired.
    event CertificateRevoked(uint256 indexed certId, string reason, address indexed by);

    // ----------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------

    /// @dev `caller` is not the owner of `meterId` (the address in its top 20 bytes).
    error RECRegistryNotMeterOwner(address caller, bytes32 meterId);
    /// @dev `meterId` is not Approved (never approved, or suspended).
    error RECRegistryMeterNotApproved(bytes32 meterId);
    /// @dev A meter id whose top 20 bytes are zero has no owner.
    error RECRegistryMeterWithoutOwner(bytes32 meterId);
    /// @dev A meter approval needs a signing key.
    error RECRegistryZeroSigningKey(bytes32 meterId);
    /// @dev A certificate must commit to the readings behind it (non-zero Merkle root).
    error RECRegistryMissingEvidence(uint32 deviceId, uint64 periodStart, uint64 periodEnd);

    /// @dev `deviceId` was never registered.
    error RECRegistryUnknownDevice(uint32 deviceId);
    /// @dev Issuance needs an Approved device.
    error RECRegistryDeviceNotApproved(uint32 deviceId, DeviceStatus status);
    /// @dev A registrar asked for a status change that does not apply (e.g. approve an approved device).
    error RECRegistryInvalidStatusTransition(uint32 deviceId, DeviceStatus current, DeviceStatus requested);
    /// @dev `meterId` already belongs to `deviceId`.
    error RECRegistryMeterAlreadyRegistered(bytes32 meterId, uint32 deviceId);
    /// @dev Device input with an empty meter id, technology or grid area.
    error RECRegistryIncompleteDevice(bytes32 technology, bytes32 gridArea, bytes32 meterId);
    /// @dev Device input with zero capacity.
    error RECRegistryZeroCapacity();

    /// @dev `certId` was never issued.
    error RECRegistryUnknownCertificate(uint256 certId);
    /// @dev Period bounds must be multiples of 900 s (15-minute slots).
    error RECRegistryPeriodNotAligned(uint64 periodStart, uint64 periodEnd);
    /// @dev Period must have `periodStart < periodEnd`.
    error RECRegistryPeriodEmpty(uint64 periodStart, uint64 periodEnd);
    /// @dev No issuance for a period that has not ended yet.
    error RECRegistryPeriodInFuture(uint64 periodEnd, uint256 nowTimestamp);
    /// @dev Period longer than `maxLength` seconds.
    error RECRegistryPeriodTooLong(uint64 periodStart, uint64 periodEnd, uint256 maxLength);
    /// @dev Period starts before the device was commissioned.
    error RECRegistryPeriodBeforeCommissioning(uint32 deviceId, uint64 periodStart, uint64 commissionedAt);
    /// @dev Some 15-minute slot of the period was already certified for this device (double counting).
    error RECRegistryPeriodAlreadyIssued(uint32 deviceId, uint64 periodStart, uint64 periodEnd);
    /// @dev Issuance of zero Wh.
    error RECRegistryZeroVolume(uint32 deviceId, uint64 periodStart, uint64 periodEnd);
    /// @dev Volume above what the device's capacity can produce in the period.
    error RECRegistryVolumeImplausible(uint32 deviceId, uint64 volumeWh, uint256 maxWh);
    /// @dev Batch arrays of different lengths.
    error RECRegistryLengthMismatch(uint256 starts, uint256 ends, uint256 volumes, uint256 evidenceRoots);
    /// @dev Batch with no period.
    error RECRegistryEmptyBatch();

    /// @dev Claim of zero Wh.
    error RECRegistryZeroAmount();
    /// @dev `holder` owns `balance` Wh of `certId`, fewer than `needed`.
    error RECRegistryInsufficientBalance(uint256 certId, address holder, uint256 balance, uint256 needed);
    /// @dev Claim without a beneficiary.
    error RECRegistryEmptyBeneficiary();
    /// @dev Consumption period must have `start < end`.
    error RECRegistryInvalidConsumptionPeriod(uint64 consumptionStart, uint64 consumptionEnd);
    /// @dev `operator` is neither `holder` nor approved for all of `holder`'s tokens.
    error RECRegistryNotHolderOrApproved(address operator, address holder);

    /// @dev The certificate is revoked: no transfer, claim or second revocation.
    error RECRegistryCertificateRevoked(uint256 certId);
    /// @dev Revocation without a reason.
    error RECRegistryEmptyReason();

    // ----------------------------------------------------------------------------------
    // Meters
    // ----------------------------------------------------------------------------------

    function approveMeter(bytes32 meterId, uint64 capacityW, address signingKey) external;

    function suspendMeter(bytes32 meterId) external;

    function meter(bytes32 meterId) external view returns (MeterRecord memory);

    function readingDigest(MeterReading calldata reading) external view returns (bytes32);

    function isValidReading(MeterReading calldata reading, bytes calldata signature) external view returns (bool);

    // ----------------------------------------------------------------------------------
    // Devices
    // ----------------------------------------------------------------------------------

    function registerDevice(DeviceInput calldata input) external returns (uint32 deviceId);

    function approveDevice(uint32 deviceId) external;

    function suspendDevice(uint32 deviceId) external;

    function device(uint32 deviceId) external view returns (Device memory);

    function deviceIdOfMeter(bytes32 meterId) external view returns (uint32);

    function deviceCount() external view returns (uint32);

    // ----------------------------------------------------------------------------------
    // Certificates
    // ----------------------------------------------------------------------------------

    function issue(
        uint32 deviceId,
        address to,
        uint64 periodStart,
        uint64 periodEnd,
        uint64 volumeWh,
        bytes32 evidenceRoot
    ) external returns (uint256 certId);

    function issueBatch(
        uint32 deviceId,
        address to,
        uint64[] calldata starts,
        uint64[] calldata ends,
        uint64[] calldata volumesWh,
        bytes32[] calldata evidenceRoots
    ) external returns (uint256 firstCertId);

    function claim(uint256 certId, uint256 amountWh, ClaimData calldata data) external returns (uint256 claimId);

    function claimFor(
        address holder,
        uint256 certId,
        uint256 amountWh,
        ClaimData calldata data
    ) external returns (uint256 claimId);

    function revoke(uint256 certId, string calldata reason) external;

    function certificate(uint256 certId) external view returns (CertificateView memory);

    function supply(uint256 certId) external view returns (uint256);

    function claimedBalance(uint256 certId, address holder) external view returns (uint256);

    function isPeriodIssued(uint32 deviceId, uint64 periodStart, uint64 periodEnd) external view returns (bool);

    function certificateCount() external view returns (uint256);

    function claimCount() external view returns (uint256);
}
