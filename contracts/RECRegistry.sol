// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IRECRegistry} from "./interfaces/IRECRegistry.sol";

/**
 * @title RECRegistry
 * @notice Renewable Energy Certificate registry after ERC-1888 on ERC-1155.
 *
 * - Meters: a meter id is owner-bound (top 20 bytes = the owner's address, low 12 bytes from
 *   the meter's name), so nobody can take another owner's id. A registrar approves a meter with
 *   its capacity and signing key ({approveMeter}) or suspends it. Meter readings are EIP-712
 *   typed data (domain "GridLedger Meters"); {isValidReading} lets anyone, including a contract,
 *   check that a reading was signed by the approved meter's key (EOA or ERC-1271) or by a
 *   metering data provider (METER_DATA_PROVIDER_ROLE).
 * - The owner of an approved meter registers its device; a registrar approves or suspends it.
 * - An issuer certifies metered production of an approved device for 15-minute-aligned
 *   periods. Every certificate is its own token id (sequential from 1) and 1 unit = 1 Wh.
 *   A per-device bitmap of 15-minute slots makes double issuance for overlapping periods
 *   impossible, in whatever order periods arrive: a slot stays taken while a live certificate
 *   covers it. Issuance needs the device's meter Approved, and each certificate commits to
 *   the signed readings behind it: `evidenceRoot` in {CertificateIssued} (emitted, not
 *   stored) is the OpenZeppelin-MerkleProof-compatible root (sorted pairs) of their
 *   {readingDigest}s.
 * - Holders transfer Wh with the standard ERC-1155 functions and retire them with {claim},
 *   which burns them and records the claimed Wh per holder.
 * - An issuer can revoke a certificate, which freezes every unit of it and frees its slots so
 *   that a corrected certificate can be issued for the period, unless some of its Wh were
 *   already retired: retired Wh stay counted, so their slots stay taken.
 *
 * Storage is laid out for cheap transactions: a certificate is one slot, a holder's balance
 * and claimed Wh of a certificate share one slot (this is why {_update} and {balanceOf} are
 * overridden instead of using ERC1155's private balances), and the device data issuance
 * needs (status, capacity, commissioning time) shares one slot.
 */
contract RECRegistry is IRECRegistry, ERC1155, AccessControl, EIP712 {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    /// @notice Head-end / metering data providers: readings they sign verify for any approved meter.
    bytes32 public constant METER_DATA_PROVIDER_ROLE = keccak256("METER_DATA_PROVIDER_ROLE");

    /// @notice EIP-712 type of {MeterReading}.
    // The EIP-712 type string is fixed by the reading struct; it cannot be shortened to 32 bytes.
    // solhint-disable-next-line gas-small-strings
    string public constant METER_READING_TYPE =
        "MeterReading(bytes32 meterId,uint64 intervalStart,uint32 intervalSeconds,uint64 importWh,uint64 exportWh)";
    /// @notice keccak256 of {METER_READING_TYPE}.
    bytes32 public constant METER_READING_TYPEHASH = keccak256(bytes(METER_READING_TYPE));

    /// @notice Length of a metering slot; period bounds must be multiples of it.
    uint64 public constant SLOT_SECONDS = 900;
    /// @notice Longest period a single certificate may cover.
    uint64 public constant MAX_PERIOD_SECONDS = 31 days;

    /// @dev One slot (8+64+160 bits); the owner is the top 20 bytes of the meter id.
    struct StoredMeter {
        MeterStatus status;
        uint64 capacityW;
        address signingKey;
    }

    /// @dev Slot 0 holds everything issuance reads; `owner` starts slot 1.
    struct DeviceRecord {
        DeviceStatus status;
        uint64 capacityW;
        uint64 commissionedAt;
        address owner;
        bytes32 technology;
        bytes32 gridArea;
        bytes32 meterId;
    }

    /// @dev Exactly one storage slot (32+40+40+40+48+48+8 = 256 bits).
    struct Certificate {
        uint32 deviceId;
        uint40 periodStart;
        uint40 periodEnd;
        uint40 issuedAt;
        uint48 volumeWh;
        uint48 claimedWh;
        bool revoked;
    }

    /// @dev What {_record} needs about the device and recipient, kept in memory.
    struct IssueContext {
        uint32 deviceId;
        uint64 capacityW;
        uint64 commissionedAt;
        address to;
    }

    /// @dev A holder's live balance and retired Wh of one certificate, in one slot.
    struct Holding {
        uint128 balance;
        uint128 claimed;
    }

    uint32 private _deviceCount;
    /// @dev Next ids, starting at 1 so that the first issuance / claim does not pay for a fresh slot.
    uint256 private _nextCertId = 1;
    uint256 private _nextClaimId = 1;

    mapping(bytes32 meterId => StoredMeter) private _meters;
    mapping(uint32 deviceId => DeviceRecord) private _devices;
    mapping(bytes32 meterId => uint32 deviceId) private _deviceIdOfMeter;
    /// @dev Bit `slot % 256` of word `slot / 256` is set once slot `timestamp / 900` is certified.
    mapping(uint32 deviceId => mapping(uint256 word => uint256 bits)) private _issuedSlots;
    mapping(uint256 certId => Certificate) private _certificates;
    mapping(uint256 certId => mapping(address holder => Holding)) private _holdings;

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE (grants REGISTRAR_ROLE and ISSUER_ROLE).
     * @param uri_ ERC-1155 metadata URI with the `{id}` placeholder.
     */
    constructor(address admin, string memory uri_) ERC1155(uri_) EIP712("GridLedger Meters", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ==================================================================================
    // Meters
    // ==================================================================================

    /**
     * @notice Approves a meter with its capacity and signing key; also re-approves a suspended
     * meter, rotates its key or changes its capacity.
     *
     * Requirements:
     * - caller has REGISTRAR_ROLE.
     * - the meter id names an owner (non-zero top 20 bytes).
     * - `capacityW` and `signingKey` are not zero.
     *
     * Emits a {MeterApproved} event.
     */
    function approveMeter(bytes32 meterId, uint64 capacityW, address signingKey) external onlyRole(REGISTRAR_ROLE) {
        address owner = _meterOwner(meterId);
        if (owner == address(0)) revert RECRegistryMeterWithoutOwner(meterId);
        if (capacityW == 0) revert RECRegistryZeroCapacity();
        if (signingKey == address(0)) revert RECRegistryZeroSigningKey(meterId);
        _meters[meterId] = StoredMeter({status: MeterStatus.Approved, capacityW: capacityW, signingKey: signingKey});
        emit MeterApproved(meterId, owner, capacityW, signingKey);
    }

    /**
     * @notice Suspends an approved meter: its readings stop verifying and its device cannot
     * issue until a registrar approves it again.
     *
     * Requirements:
     * - caller has REGISTRAR_ROLE.
     * - the meter is Approved.
     *
     * Emits a {MeterSuspended} event.
     */
    function suspendMeter(bytes32 meterId) external onlyRole(REGISTRAR_ROLE) {
        StoredMeter storage m = _meters[meterId];
        if (m.status != MeterStatus.Approved) revert RECRegistryMeterNotApproved(meterId);
        m.status = MeterStatus.Suspended;
        emit MeterSuspended(meterId);
    }

    /// @notice Returns a meter; an unknown meter is Pending with zero capacity and key.
    function meter(bytes32 meterId) external view returns (MeterRecord memory) {
        StoredMeter memory m = _meters[meterId];
        return
            MeterRecord({
                owner: _meterOwner(meterId),
                status: m.status,
                capacityW: m.capacityW,
                signingKey: m.signingKey
            });
    }

    /// @notice Returns the EIP-712 digest a meter signs for `reading` (domain "GridLedger Meters").
    function readingDigest(MeterReading calldata reading) public view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(
                        METER_READING_TYPEHASH,
                        reading.meterId,
                        reading.intervalStart,
                        reading.intervalSeconds,
                        reading.importWh,
                        reading.exportWh
                    )
                )
            );
    }

    /**
     * @notice Returns whether `signature` signs `reading` for an Approved meter: by the meter's
     * signing key (ECDSA, or ERC-1271 when the key is a contract) or by an account holding
     * METER_DATA_PROVIDER_ROLE. The digest names the meter and the interval, so a signature
     * cannot be replayed to another meter or interval.
     */
    function isValidReading(MeterReading calldata reading, bytes calldata signature) external view returns (bool) {
        StoredMeter memory m = _meters[reading.meterId];
        if (m.status != MeterStatus.Approved) return false;
        bytes32 digest = readingDigest(reading);
        if (SignatureChecker.isValidSignatureNow(m.signingKey, digest, signature)) return true;
        // The third value only details why recovery failed; any error means "not valid" here.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && hasRole(METER_DATA_PROVIDER_ROLE, signer);
    }

    // ==================================================================================
    // Devices
    // ==================================================================================

    /**
     * @notice Registers a device on the caller's approved meter; the device starts Pending.
     *
     * Requirements:
     * - `input.capacityW` is not zero.
     * - `input.technology`, `input.gridArea` and `input.meterId` are not empty.
     * - the caller owns `input.meterId` and the meter is Approved.
     * - `input.meterId` is not registered for another device.
     *
     * Emits a {DeviceRegistered} event.
     */
    function registerDevice(DeviceInput calldata input) external returns (uint32 deviceId) {
        if (input.capacityW == 0) revert RECRegistryZeroCapacity();
        if (input.technology == bytes32(0) || input.gridArea == bytes32(0) || input.meterId == bytes32(0)) {
            revert RECRegistryIncompleteDevice(input.technology, input.gridArea, input.meterId);
        }
        if (_meterOwner(input.meterId) != msg.sender) revert RECRegistryNotMeterOwner(msg.sender, input.meterId);
        if (_meters[input.meterId].status != MeterStatus.Approved) revert RECRegistryMeterNotApproved(input.meterId);
        uint32 existing = _deviceIdOfMeter[input.meterId];
        if (existing != 0) revert RECRegistryMeterAlreadyRegistered(input.meterId, existing);

        deviceId = ++_deviceCount;
        _deviceIdOfMeter[input.meterId] = deviceId;
        _devices[deviceId] = DeviceRecord({
            status: DeviceStatus.Pending,
            capacityW: input.capacityW,
            commissionedAt: input.commissionedAt,
            owner: msg.sender,
            technology: input.technology,
            gridArea: input.gridArea,
            meterId: input.meterId
        });
        emit DeviceRegistered(
            deviceId,
            msg.sender,
            input.technology,
            input.capacityW,
            input.gridArea,
            input.commissionedAt,
            input.meterId
        );
    }

    /**
     * @notice Approves a Pending device, or re-approves a Suspended one, for issuance.
     *
     * Requirements:
     * - caller has REGISTRAR_ROLE.
     * - the device exists and is not already Approved.
     *
     * Emits a {DeviceStatusChanged} event.
     */
    function approveDevice(uint32 deviceId) external onlyRole(REGISTRAR_ROLE) {
        _setStatus(deviceId, DeviceStatus.Approved);
    }

    /**
     * @notice Suspends a Pending or Approved device: no issuance until it is approved again.
     *
     * Requirements:
     * - caller has REGISTRAR_ROLE.
     * - the device exists and is not already Suspended.
     *
     * Emits a {DeviceStatusChanged} event.
     */
    function suspendDevice(uint32 deviceId) external onlyRole(REGISTRAR_ROLE) {
        _setStatus(deviceId, DeviceStatus.Suspended);
    }

    /**
     * @notice Returns a registered device.
     *
     * Requirements:
     * - the device exists.
     */
    function device(uint32 deviceId) external view returns (Device memory) {
        DeviceRecord storage d = _existingDevice(deviceId);
        return
            Device({
                owner: d.owner,
                status: d.status,
                technology: d.technology,
                capacityW: d.capacityW,
                gridArea: d.gridArea,
                commissionedAt: d.commissionedAt,
                meterId: d.meterId
            });
    }

    /// @notice Returns the device registered with `meterId`, or 0 if none.
    function deviceIdOfMeter(bytes32 meterId) external view returns (uint32) {
        return _deviceIdOfMeter[meterId];
    }

    /// @notice Returns the number of registered devices (also the highest device id).
    function deviceCount() external view returns (uint32) {
        return _deviceCount;
    }

    // ==================================================================================
    // Issuance
    // ==================================================================================

    /**
     * @notice Issues one certificate of `volumeWh` Wh to `to` for a device's production in
     * [`periodStart`, `periodEnd`), committing to the readings behind it: `evidenceRoot` is the
     * Merkle root (sorted pairs, OpenZeppelin MerkleProof) of their {readingDigest}s.
     *
     * Requirements:
     * - caller has ISSUER_ROLE.
     * - the device exists and is Approved, and so is its meter.
     * - `evidenceRoot` is not zero.
     * - `to` is not the zero address and, if a contract, accepts ERC-1155 tokens.
     * - the period is aligned to 900 s, not empty, not longer than 31 days, has ended, and
     *   starts no earlier than the device's commissioning.
     * - no 15-minute slot of the period has been certified for the device before.
     * - `0 < volumeWh <= capacityW * duration / 3600`.
     *
     * Emits a {CertificateIssued} and a {TransferSingle} event.
     */
    function issue(
        uint32 deviceId,
        address to,
        uint64 periodStart,
        uint64 periodEnd,
        uint64 volumeWh,
        bytes32 evidenceRoot
    ) external onlyRole(ISSUER_ROLE) returns (uint256 certId) {
        IssueContext memory ctx = _issueContext(deviceId, to);
        // The post-increment yields the id being issued and bumps the counter in one statement.
        // solhint-disable-next-line gas-increment-by-one
        certId = _nextCertId++;
        _record(ctx, certId, periodStart, periodEnd, volumeWh, evidenceRoot);
        _mint(to, certId, volumeWh, "");
    }

    /**
     * @notice Issues one certificate per period of a device to `to` in one call; the
     * certificate ids are consecutive from the returned `firstCertId`.
     *
     * Requirements:
     * - caller has ISSUER_ROLE.
     * - `starts`, `ends`, `volumesWh` and `evidenceRoots` have the same, non-zero length.
     * - every period, volume and evidence root satisfies the requirements of {issue}, and no
     *   two periods of the batch overlap.
     *
     * Emits one {CertificateIssued} event per period and one {TransferBatch} event
     * ({TransferSingle} for a batch of one).
     */
    function issueBatch(
        uint32 deviceId,
        address to,
        uint64[] calldata starts,
        uint64[] calldata ends,
        uint64[] calldata volumesWh,
        bytes32[] calldata evidenceRoots
    ) external onlyRole(ISSUER_ROLE) returns (uint256 firstCertId) {
        {
            uint256 n = starts.length;
            if (n != ends.length || n != volumesWh.length || n != evidenceRoots.length) {
                revert RECRegistryLengthMismatch(n, ends.length, volumesWh.length, evidenceRoots.length);
            }
            if (n == 0) revert RECRegistryEmptyBatch();
        }
        return _issueBatch(_issueContext(deviceId, to), starts, ends, volumesWh, evidenceRoots);
    }

    // ==================================================================================
    // Retirement and revocation
    // ==================================================================================

    /**
     * @notice Retires `amountWh` of the caller's Wh of `certId` for a beneficiary: the Wh are
     * burned and counted in {claimedBalance}.
     *
     * Requirements:
     * - the certificate exists and is not revoked.
     * - `0 < amountWh <=` the caller's balance of `certId`.
     * - `data.beneficiary` is not empty and `data.consumptionStart < data.consumptionEnd`.
     *
     * Emits a {TransferSingle} event (to the zero address) and a {CertificateClaimed} event
     * carrying the new sequential `claimId`.
     */
    function claim(uint256 certId, uint256 amountWh, ClaimData calldata data) external returns (uint256 claimId) {
        return _claim(msg.sender, certId, amountWh, data);
    }

    /**
     * @notice Retires `amountWh` of `holder`'s Wh of `certId` on the holder's behalf
     * (custodial backends); same as {claim} otherwise.
     *
     * Requirements:
     * - caller is `holder` or approved for all of `holder`'s tokens ({setApprovalForAll}).
     * - the requirements of {claim}, for `holder`'s balance.
     *
     * Emits a {TransferSingle} and a {CertificateClaimed} event.
     */
    function claimFor(
        address holder,
        uint256 certId,
        uint256 amountWh,
        ClaimData calldata data
    ) external returns (uint256 claimId) {
        if (holder != msg.sender && !isApprovedForAll(holder, msg.sender)) {
            revert RECRegistryNotHolderOrApproved(msg.sender, holder);
        }
        return _claim(holder, certId, amountWh, data);
    }

    /**
     * @notice Revokes a certificate (e.g. meter data found wrong): afterwards no unit of it
     * can be transferred or claimed. Already retired Wh stay retired. If none of its Wh were
     * retired, its 15-minute slots are freed so a corrected certificate can be issued for the
     * device and period; otherwise they stay taken (the retired Wh already count that
     * production, and freeing the slots would let it be counted twice).
     *
     * Requirements:
     * - caller has ISSUER_ROLE.
     * - the certificate exists and is not already revoked.
     * - `reason` is not empty.
     *
     * Emits a {CertificateRevoked} event.
     */
    function revoke(uint256 certId, string calldata reason) external onlyRole(ISSUER_ROLE) {
        Certificate storage c = _existingCertificate(certId);
        if (c.revoked) revert RECRegistryCertificateRevoked(certId);
        if (bytes(reason).length == 0) revert RECRegistryEmptyReason();
        c.revoked = true;
        if (c.claimedWh == 0) _updateSlots(c.deviceId, c.periodStart, c.periodEnd, false);
        emit CertificateRevoked(certId, reason, msg.sender);
    }

    // ==================================================================================
    // Views
    // ==================================================================================

    /**
     * @notice Returns a certificate with its device's technology and grid area.
     *
     * Requirements:
     * - the certificate exists.
     */
    function certificate(uint256 certId) external view returns (CertificateView memory) {
        Certificate memory c = _existingCertificate(certId);
        DeviceRecord storage d = _devices[c.deviceId];
        return
            CertificateView({
                deviceId: c.deviceId,
                technology: d.technology,
                gridArea: d.gridArea,
                periodStart: c.periodStart,
                periodEnd: c.periodEnd,
                issuedAt: c.issuedAt,
                volumeWh: c.volumeWh,
                claimedWh: c.claimedWh,
                revoked: c.revoked
            });
    }

    /// @notice Returns the Wh of `certId` in circulation: issued minus claimed (0 if unknown).
    function supply(uint256 certId) external view returns (uint256) {
        Certificate storage c = _certificates[certId];
        return c.volumeWh - c.claimedWh;
    }

    /// @notice Returns the Wh of `certId` that `holder` has retired.
    function claimedBalance(uint256 certId, address holder) external view returns (uint256) {
        return _holdings[certId][holder].claimed;
    }

    /**
     * @notice Returns whether any 15-minute slot of [`periodStart`, `periodEnd`) is already
     * certified for the device (by a live certificate, or a revoked one with retired Wh), i.e.
     * whether {issue} would revert with {RECRegistryPeriodAlreadyIssued}.
     *
     * Requirements:
     * - the period is aligned to 900 s and not longer than 31 days.
     */
    function isPeriodIssued(uint32 deviceId, uint64 periodStart, uint64 periodEnd) external view returns (bool) {
        _checkPeriodShape(periodStart, periodEnd);
        mapping(uint256 => uint256) storage words = _issuedSlots[deviceId];
        uint256 slot = periodStart / SLOT_SECONDS;
        uint256 endSlot = periodEnd / SLOT_SECONDS;
        while (slot < endSlot) {
            (uint256 word, uint256 mask, uint256 next) = _slotMask(slot, endSlot);
            if (words[word] & mask != 0) return true;
            slot = next;
        }
        return false;
    }

    /// @notice Returns the number of certificates issued (also the highest certificate id).
    function certificateCount() external view returns (uint256) {
        return _nextCertId - 1;
    }

    /// @notice Returns the number of claims made (also the highest claim id).
    function claimCount() external view returns (uint256) {
        return _nextClaimId - 1;
    }

    /// @inheritdoc ERC1155
    function balanceOf(address account, uint256 id) public view override returns (uint256) {
        return _holdings[id][account].balance;
    }

    /// @inheritdoc ERC1155
    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return interfaceId == type(IRECRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    // ==================================================================================
    // Internals
    // ==================================================================================

    /**
     * @dev Replaces ERC1155's balance bookkeeping with {Holding} slots (balance and claimed
     * Wh together, so a claim writes one slot) and freezes revoked certificates: any move out
     * of an account (transfer or burn) of a revoked id reverts. Mints skip the revocation
     * check. Same checks and events as ERC1155._update otherwise.
     */
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values) internal override {
        if (ids.length != values.length) {
            revert ERC1155InvalidArrayLength(ids.length, values.length);
        }
        for (uint256 i; i < ids.length;) {
            uint256 id = ids[i];
            uint256 value = values[i];
            if (from != address(0)) {
                if (_certificates[id].revoked) revert RECRegistryCertificateRevoked(id);
                Holding storage h = _holdings[id][from];
                uint256 fromBalance = h.balance;
                if (fromBalance < value) {
                    revert ERC1155InsufficientBalance(from, fromBalance, value, id);
                }
                unchecked {
                    h.balance = uint128(fromBalance - value);
                }
            }
            if (to != address(0)) {
                // Cannot overflow: the sum of all balances of an id is at most its uint48 volume.
                _holdings[id][to].balance += uint128(value);
            }
            unchecked {
                ++i;
            }
        }
        if (ids.length == 1) {
            emit TransferSingle(_msgSender(), from, to, ids[0], values[0]);
        } else {
            emit TransferBatch(_msgSender(), from, to, ids, values);
        }
    }

    function _setStatus(uint32 deviceId, DeviceStatus newStatus) private {
        DeviceRecord storage d = _existingDevice(deviceId);
        DeviceStatus oldStatus = d.status;
        if (oldStatus == newStatus) {
            revert RECRegistryInvalidStatusTransition(deviceId, oldStatus, newStatus);
        }
        d.status = newStatus;
        emit DeviceStatusChanged(deviceId, oldStatus, newStatus, msg.sender);
    }

    function _existingDevice(uint32 deviceId) private view returns (DeviceRecord storage d) {
        d = _devices[deviceId];
        if (d.capacityW == 0) revert RECRegistryUnknownDevice(deviceId);
    }

    function _issueContext(uint32 deviceId, address to) private view returns (IssueContext memory) {
        DeviceRecord storage d = _existingDevice(deviceId);
        if (d.status != DeviceStatus.Approved) revert RECRegistryDeviceNotApproved(deviceId, d.status);
        bytes32 meterId = d.meterId;
        if (_meters[meterId].status != MeterStatus.Approved) revert RECRegistryMeterNotApproved(meterId);
        return IssueContext({deviceId: deviceId, capacityW: d.capacityW, commissionedAt: d.commissionedAt, to: to});
    }

    /// @dev The owner of a meter is the address in the top 20 bytes of its id.
    function _meterOwner(bytes32 meterId) private pure returns (address) {
        return address(bytes20(meterId));
    }

    function _existingCertificate(uint256 certId) private view returns (Certificate storage c) {
        c = _certificates[certId];
        if (c.deviceId == 0) revert RECRegistryUnknownCertificate(certId);
    }

    function _checkPeriodShape(uint64 periodStart, uint64 periodEnd) private pure {
        if (periodStart % SLOT_SECONDS != 0 || periodEnd % SLOT_SECONDS != 0) {
            revert RECRegistryPeriodNotAligned(periodStart, periodEnd);
        }
        if (periodStart >= periodEnd) revert RECRegistryPeriodEmpty(periodStart, periodEnd);
        if (periodEnd - periodStart > MAX_PERIOD_SECONDS) {
            revert RECRegistryPeriodTooLong(periodStart, periodEnd, MAX_PERIOD_SECONDS);
        }
    }

    /**
     * @dev Validates one period and volume, marks its slots in the device bitmap (reverting
     * on any overlap) and stores the certificate. Does not mint.
     */
    function _record(
        IssueContext memory ctx,
        uint256 certId,
        uint64 periodStart,
        uint64 periodEnd,
        uint64 volumeWh,
        bytes32 evidenceRoot
    ) private {
        uint32 deviceId = ctx.deviceId;
        _checkPeriodShape(periodStart, periodEnd);
        if (periodEnd > block.timestamp) revert RECRegistryPeriodInFuture(periodEnd, block.timestamp);
        if (periodStart < ctx.commissionedAt) {
            revert RECRegistryPeriodBeforeCommissioning(deviceId, periodStart, ctx.commissionedAt);
        }
        if (volumeWh == 0) revert RECRegistryZeroVolume(deviceId, periodStart, periodEnd);
        if (evidenceRoot == bytes32(0)) revert RECRegistryMissingEvidence(deviceId, periodStart, periodEnd);
        uint256 maxWh = (uint256(ctx.capacityW) * (periodEnd - periodStart)) / 3600;
        if (maxWh > type(uint48).max) maxWh = type(uint48).max;
        if (volumeWh > maxWh) revert RECRegistryVolumeImplausible(deviceId, volumeWh, maxWh);

        _updateSlots(deviceId, periodStart, periodEnd, true);

        // periodEnd <= block.timestamp < 2**40 and volumeWh <= type(uint48).max: casts are safe.
        _certificates[certId] = Certificate({
            deviceId: deviceId,
            periodStart: uint40(periodStart),
            periodEnd: uint40(periodEnd),
            issuedAt: uint40(block.timestamp),
            volumeWh: uint48(volumeWh),
            claimedWh: 0,
            revoked: false
        });
        emit CertificateIssued(certId, deviceId, ctx.to, periodStart, periodEnd, volumeWh, evidenceRoot);
    }

    /// @dev {_record} for every period of a batch (lengths checked), then one batch mint.
    function _issueBatch(
        IssueContext memory ctx,
        uint64[] calldata starts,
        uint64[] calldata ends,
        uint64[] calldata volumesWh,
        bytes32[] calldata evidenceRoots
    ) private returns (uint256 firstCertId) {
        firstCertId = _nextCertId;
        uint256[] memory ids = new uint256[](starts.length);
        uint256[] memory values = new uint256[](starts.length);
        for (uint256 i; i < ids.length;) {
            ids[i] = firstCertId + i;
            values[i] = volumesWh[i];
            _record(ctx, firstCertId + i, starts[i], ends[i], volumesWh[i], evidenceRoots[i]);
            unchecked {
                ++i;
            }
        }
        _nextCertId = firstCertId + ids.length;
        _mintBatch(ctx.to, ids, values, "");
    }

    /**
     * @dev `take`: sets the bits of every slot of the period, reverting if any was already set
     * (issuance). Otherwise clears them (revocation: all were set by the one certificate).
     */
    function _updateSlots(uint32 deviceId, uint64 periodStart, uint64 periodEnd, bool take) private {
        mapping(uint256 => uint256) storage words = _issuedSlots[deviceId];
        uint256 slot = periodStart / SLOT_SECONDS;
        uint256 endSlot = periodEnd / SLOT_SECONDS;
        while (slot < endSlot) {
            (uint256 word, uint256 mask, uint256 next) = _slotMask(slot, endSlot);
            uint256 bits = words[word];
            if (!take) {
                words[word] = bits & ~mask;
            } else if (bits & mask != 0) {
                revert RECRegistryPeriodAlreadyIssued(deviceId, periodStart, periodEnd);
            } else {
                words[word] = bits | mask;
            }
            slot = next;
        }
    }

    /**
     * @dev For slots [`slot`, `endSlot`) returns the bitmap word holding `slot`, the mask of
     * the range's bits within that word, and the first slot after it (next word or `endSlot`).
     */
    function _slotMask(uint256 slot, uint256 endSlot) private pure returns (uint256 word, uint256 mask, uint256 next) {
        unchecked {
            word = slot >> 8;
            uint256 wordEnd = (word + 1) << 8;
            next = endSlot < wordEnd ? endSlot : wordEnd;
            uint256 count = next - slot; // 1..256
            uint256 ones = count == 256 ? type(uint256).max : (uint256(1) << count) - 1;
            mask = ones << (slot & 255);
        }
    }

    function _claim(
        address holder,
        uint256 certId,
        uint256 amountWh,
        ClaimData calldata data
    ) private returns (uint256 claimId) {
        if (amountWh == 0) revert RECRegistryZeroAmount();
        if (bytes(data.beneficiary).length == 0) revert RECRegistryEmptyBeneficiary();
        if (data.consumptionStart >= data.consumptionEnd) {
            revert RECRegistryInvalidConsumptionPeriod(data.consumptionStart, data.consumptionEnd);
        }
        Certificate storage c = _existingCertificate(certId);
        if (c.revoked) revert RECRegistryCertificateRevoked(certId);
        Holding storage h = _holdings[certId][holder];
        uint256 balance = h.balance;
        if (amountWh > balance) revert RECRegistryInsufficientBalance(certId, holder, balance, amountWh);

        // amountWh <= balance <= volumeWh (uint48): casts are safe.
        c.claimedWh += uint48(amountWh);
        // The post-increment yields the id being recorded and bumps the counter in one statement.
        // solhint-disable-next-line gas-increment-by-one
        claimId = _nextClaimId++;
        _burn(holder, certId, amountWh);
        h.claimed += uint128(amountWh);
        emit CertificateClaimed(
            certId,
            holder,
            amountWh,
            data.beneficiary,
            data.purpose,
            data.consumptionStart,
            data.consumptionEnd,
            data.location,
            claimId
        );
    }
}
